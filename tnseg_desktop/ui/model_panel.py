"""The Model panel: segment one or all frames (progress, cancel), propagate, model and refiner choice, device."""

from __future__ import annotations

from typing import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGridLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from tnseg_desktop.training.versions import SHIPPED_NAME

NONE_LABEL = "none installed"


class ModelPanel(QWidget):
    segment_frame = Signal()
    segment_all = Signal()
    cancel = Signal()
    propagate = Signal(int)  # +1 forward, -1 backward
    auto_model_chosen = Signal(str)
    refiner_chosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setStyleSheet("QPushButton:disabled { color: #59616b; border-color: #2b3036; }")
        self.auto_combo = QComboBox()
        self.refiner_combo = QComboBox()
        for c in (self.auto_combo, self.refiner_combo):
            c.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            c.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            c.setMinimumContentsLength(10)
        self.auto_combo.setToolTip("The model that proposes masks automatically")
        self.refiner_combo.setToolTip("The model that turns clicks and boxes into a mask")
        self.auto_combo.textActivated.connect(self.auto_model_chosen)
        self.refiner_combo.textActivated.connect(self.refiner_chosen)

        self.segment_frame_button = self._button("Segment frame", "Automatic mask for this frame (S)", self.segment_frame)
        self.segment_all_button = self._button("Segment all frames", "Automatic masks for every frame; your edited "
                                               "and accepted frames keep their masks (Shift+S)", self.segment_all)
        self.back_button = self._button("◀ Propagate", "Carry this frame's mask to the previous frames (Shift+Left)",
                                        lambda: self.propagate.emit(-1))
        self.forward_button = self._button("Propagate ▶", "Carry this frame's mask to the next frames (Shift+Right)",
                                           lambda: self.propagate.emit(1))
        self.cancel_button = self._button("Cancel", "Stop the running job (Esc)", self.cancel)
        self.cancel_button.setVisible(False)

        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setMaximumHeight(14)
        self.progress.setVisible(False)
        self.job_label = QLabel("")
        self.job_label.setObjectName("InfoLabel")
        self.job_label.setWordWrap(True)
        self.version_label = QLabel("shipped")
        self.version_label.setObjectName("InfoValue")
        self.version_label.setToolTip("The tnseg-lite version in use (Training › Model Versions lists them all)")
        self.device_label = QLabel("checking…")
        self.device_label.setObjectName("InfoValue")
        self.embed_label = QLabel("")
        self.embed_label.setObjectName("InfoLabel")
        self.embed_label.setToolTip("Image embeddings computed in the background, nearest frames first, so clicks answer at once")

        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Model", self.auto_combo)
        form.addRow("Refiner", self.refiner_combo)
        form.addRow("Version", self.version_label)
        form.addRow("Compute", self.device_label)
        grid = QGridLayout()
        grid.setContentsMargins(0, 4, 0, 0)
        grid.addWidget(self.segment_frame_button, 0, 0, 1, 2)
        grid.addWidget(self.segment_all_button, 1, 0, 1, 2)
        grid.addWidget(self.back_button, 2, 0)
        grid.addWidget(self.forward_button, 2, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(form)
        lay.addLayout(grid)
        lay.addWidget(self.progress)
        lay.addWidget(self.job_label)
        lay.addWidget(self.cancel_button, 0, Qt.AlignmentFlag.AlignRight)
        lay.addWidget(self.embed_label)
        self.set_models([], None, [], None)

    def _button(self, text: str, tip: str, slot) -> QPushButton:
        b = QPushButton(text)
        b.setToolTip(tip)
        b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        b.clicked.connect(slot)
        return b

    def set_models(self, autos: Sequence[str], auto: str | None, refiners: Sequence[str], refiner: str | None) -> None:
        for combo, names, current in ((self.auto_combo, autos, auto), (self.refiner_combo, refiners, refiner)):
            combo.blockSignals(True)
            combo.clear()
            combo.addItems(list(names) or [NONE_LABEL])
            if current and current in names:
                combo.setCurrentText(current)
            combo.setEnabled(bool(names))
            combo.blockSignals(False)
        self.set_available(bool(auto), bool(refiner))

    def set_available(self, auto: bool, refiner: bool) -> None:
        self._auto, self._refiner = auto, refiner
        self._sync_buttons(self.cancel_button.isVisible())

    def _sync_buttons(self, running: bool) -> None:
        for b in (self.segment_frame_button, self.segment_all_button):
            b.setEnabled(self._auto and not running)
        for b in (self.back_button, self.forward_button):
            b.setEnabled(self._refiner and not running)

    def set_version(self, name: str | None) -> None:
        """The tnseg-lite version in use: a retrained version's name, else the shipped model."""
        self.version_label.setText("shipped" if not name or name == SHIPPED_NAME else name)

    def set_device(self, text: str) -> None:
        self.device_label.setText(text)

    def job_started(self, text: str, total: int) -> None:
        self.job_label.setText(text)
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(0)
        self.progress.setFormat(f"%v / {total}")
        self.progress.setVisible(True)
        self.cancel_button.setVisible(True)
        self._sync_buttons(True)

    def job_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)

    def job_finished(self, text: str = "") -> None:
        self.progress.setVisible(False)
        self.cancel_button.setVisible(False)
        self.job_label.setText(text)
        self._sync_buttons(False)

    def set_embedding_progress(self, done: int, total: int) -> None:
        if total <= 0:
            self.embed_label.setText("")
        elif done >= total:
            self.embed_label.setText(f"Embeddings ready for all {total} frames")
        else:
            self.embed_label.setText(f"Preparing embeddings… {done} / {total}")
