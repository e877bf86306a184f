"""Brightness and contrast, turned into display levels for the canvas."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFormLayout, QHBoxLayout, QLabel, QPushButton, QSlider, QVBoxLayout, QWidget


def levels_for(brightness: int, contrast: int) -> tuple[float, float]:
    """Display levels (low, high) for brightness and contrast in -100..100.

    Brightness moves the window centre (positive = brighter image); contrast
    narrows (positive) or widens (negative) the window by up to a factor of 4.
    0, 0 gives the identity mapping 0..255.
    """
    centre = 127.5 - brightness * 1.275
    width = 255.0 * 4.0 ** (-contrast / 100.0)
    return centre - width / 2.0, centre + width / 2.0


class DisplayControls(QWidget):
    levels_changed = Signal(float, float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.brightness = self._slider()
        self.contrast = self._slider()
        self._brightness_value = QLabel("0")
        self._contrast_value = QLabel("0")
        self.reset_button = QPushButton("Reset")
        self.reset_button.setToolTip("Original brightness and contrast (R)")
        self.reset_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.reset_button.clicked.connect(self.reset)

        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Brightness", self._row(self.brightness, self._brightness_value))
        form.addRow("Contrast", self._row(self.contrast, self._contrast_value))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(form)
        layout.addWidget(self.reset_button, 0, Qt.AlignmentFlag.AlignRight)
        self.brightness.valueChanged.connect(self._changed)
        self.contrast.valueChanged.connect(self._changed)

    def _slider(self) -> QSlider:
        s = QSlider(Qt.Orientation.Horizontal)
        s.setRange(-100, 100)
        s.setValue(0)
        s.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        return s

    def _row(self, slider: QSlider, value: QLabel) -> QWidget:
        w = QWidget()
        h = QHBoxLayout(w)
        h.setContentsMargins(0, 0, 0, 0)
        value.setMinimumWidth(value.fontMetrics().horizontalAdvance("-100") + 4)
        value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        h.addWidget(slider, 1)
        h.addWidget(value)
        return w

    def reset(self) -> None:
        self.brightness.setValue(0)
        self.contrast.setValue(0)

    def current_levels(self) -> tuple[float, float]:
        return levels_for(self.brightness.value(), self.contrast.value())

    def _changed(self) -> None:
        self._brightness_value.setText(str(self.brightness.value()))
        self._contrast_value.setText(str(self.contrast.value()))
        self.levels_changed.emit(*self.current_levels())
