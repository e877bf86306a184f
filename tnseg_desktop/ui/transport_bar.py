"""The strip under the image: play/pause, step buttons, frame slider and counter."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import QGridLayout, QLabel, QSlider, QToolButton, QWidget

from tnseg_desktop.ui.icons import transport_icon


class TransportBar(QWidget):
    """Emits what the user asks for; the window decides what is shown."""

    SLIDER_COLUMN = 3

    frame_requested = Signal(int)  # 0-based index from the slider
    play_toggled = Signal()
    step_requested = Signal(int)  # -1 or +1

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("TransportBar")
        self._icon_play = transport_icon("play")
        self._icon_pause = transport_icon("pause")

        self.prev_button = self._button(transport_icon("previous"), "Previous frame (Left)")
        self.play_button = self._button(self._icon_play, "Play / pause (Space)")
        self.next_button = self._button(transport_icon("next"), "Next frame (Right)")
        self.prev_button.clicked.connect(lambda: self.step_requested.emit(-1))
        self.next_button.clicked.connect(lambda: self.step_requested.emit(1))
        self.play_button.clicked.connect(self.play_toggled)

        self.slider = QSlider(Qt.Orientation.Horizontal)
        # keys belong to the window's shortcuts, not to a focused slider
        self.slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.slider.setMinimum(0)
        self.slider.setMaximum(0)
        self.slider.valueChanged.connect(self._on_slider)

        self.counter = QLabel("– / –")
        self.counter.setObjectName("FrameCounter")
        self.counter.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.counter.setMinimumWidth(self.counter.fontMetrics().horizontalAdvance("0000 / 0000") + 8)
        self.fps_label = QLabel("")
        self.fps_label.setObjectName("FpsLabel")

        # row 0 is free for a per-frame strip drawn above the slider (see set_frame_strip)
        self._grid = QGridLayout(self)
        self._grid.setContentsMargins(8, 4, 8, 4)
        self._grid.setHorizontalSpacing(6)
        self._grid.setVerticalSpacing(0)
        for col, w in enumerate((self.prev_button, self.play_button, self.next_button)):
            self._grid.addWidget(w, 1, col)
        self._grid.addWidget(self.slider, 1, self.SLIDER_COLUMN)
        self._grid.addWidget(self.counter, 1, 4)
        self._grid.addWidget(self.fps_label, 1, 5)
        self._grid.setColumnStretch(self.SLIDER_COLUMN, 1)
        self._strip: QWidget | None = None
        self._updating = False
        self.set_frame_count(0)

    def set_frame_strip(self, strip: QWidget | None) -> None:
        """Show ``strip`` (e.g. per-frame annotation states) directly above the slider."""
        if self._strip is not None:
            self._grid.removeWidget(self._strip)
            self._strip.setParent(None)
        self._strip = strip
        if strip is not None:
            self._grid.addWidget(strip, 0, self.SLIDER_COLUMN)

    def _button(self, icon, tip: str) -> QToolButton:
        b = QToolButton()
        b.setIcon(icon)
        b.setIconSize(QSize(18, 18))
        b.setToolTip(tip)
        b.setAutoRaise(True)
        b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        return b

    def set_frame_count(self, n: int, fps: float | None = None) -> None:
        self._updating = True
        self.slider.setMaximum(max(0, n - 1))
        self.slider.setValue(0)
        self._updating = False
        enabled = n > 0
        for w in (self.slider, self.prev_button, self.next_button):
            w.setEnabled(n > 1)
        self.play_button.setEnabled(n > 1)
        self.counter.setText(f"1 / {n}" if enabled else "– / –")
        self.fps_label.setText(f"{round(fps, 2):g} fps" if fps and enabled else "")
        self._n = n

    def set_current(self, index: int) -> None:
        """Move the slider and counter without emitting ``frame_requested``."""
        self._updating = True
        self.slider.setValue(index)
        self._updating = False
        if self._n:
            self.counter.setText(f"{index + 1} / {self._n}")

    def set_playing(self, playing: bool) -> None:
        self.play_button.setIcon(self._icon_pause if playing else self._icon_play)

    def _on_slider(self, value: int) -> None:
        if not self._updating:
            self.frame_requested.emit(value)
