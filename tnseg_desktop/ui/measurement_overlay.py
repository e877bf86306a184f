"""The nodule's size: diameter lines drawn on the image and a panel with the figures (copyable)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QLineF, QPointF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QGuiApplication, QPen, QTransform
from PySide6.QtWidgets import (
    QFormLayout,
    QGraphicsItem,
    QGraphicsLineItem,
    QGraphicsSimpleTextItem,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from tnseg_desktop.engine.measurements import Measurement
from tnseg_desktop.ui.canvas import Z_MARKERS, CineCanvas

DIAMETER = "#5fd3f3"
PERPENDICULAR = "#9fe7ff"
WARNING = "#ffb347"
# beside a mask the model produced on a frame unlike its training frames
OUT_OF_RANGE_TAG = "⚠ Unlike the thyroid frames the model learnt from: may not be a nodule"
OUT_OF_RANGE_NOTE = "This frame is unlike the model's thyroid training frames: the mask may not be a nodule."


class MeasurementLines:
    """The longest diameter (solid) and its perpendicular (dashed) on the canvas."""

    def __init__(self, canvas: CineCanvas) -> None:
        self.diameter = QGraphicsLineItem()
        self.perpendicular = QGraphicsLineItem()
        for item, colour, style in ((self.diameter, DIAMETER, Qt.PenStyle.SolidLine),
                                    (self.perpendicular, PERPENDICULAR, Qt.PenStyle.DashLine)):
            pen = QPen(QColor(colour))
            pen.setCosmetic(True)
            pen.setWidthF(1.5)
            pen.setStyle(style)
            pen.setCapStyle(Qt.PenCapStyle.RoundCap)
            item.setPen(pen)
            item.setVisible(False)
            canvas.add_layer(item, Z_MARKERS - 1)
        self.warning = QGraphicsSimpleTextItem(OUT_OF_RANGE_TAG)
        self.warning.setBrush(QBrush(QColor(WARNING)))
        self.warning.setPen(QPen(QColor("#201405"), 0.6))
        font = QFont()
        font.setPointSize(11)
        font.setBold(True)
        self.warning.setFont(font)
        self.warning.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, True)  # readable at any zoom
        self.warning.setVisible(False)
        canvas.add_layer(self.warning, Z_MARKERS)
        self.enabled = True

    def show(self, m: Measurement | None, warning: str | None = None, anchor: tuple[float, float, bool] | None = None) -> None:
        """The lines of ``m``; with ``warning``, a tag saying the mask may not be a nodule.

        ``anchor`` = (x, y, right): where the tag starts (or, when ``right``, ends) in image coordinates.
        """
        if m is not None and warning and anchor is not None:
            x, y, right = anchor
            self.warning.setPos(QPointF(x, y))
            # the tag keeps its size on screen, so it is shifted by its own width in screen pixels
            width = self.warning.boundingRect().width() if right else 0.0
            self.warning.setTransform(QTransform.fromTranslate(-width, 0.0))
            self.warning.setToolTip(warning)
            self.warning.setVisible(True)
        else:
            self.warning.setVisible(False)
        for item, ends in ((self.diameter, m.diameter_ends if m else None),
                           (self.perpendicular, m.perpendicular_ends if m else None)):
            if ends is None or not self.enabled:
                item.setVisible(False)
                continue
            (x0, y0), (x1, y1) = ends
            item.setLine(QLineF(QPointF(x0, y0), QPointF(x1, y1)))
            item.setVisible(True)

    def set_enabled(self, on: bool) -> None:
        self.enabled = on
        if not on:
            self.diameter.setVisible(False)
            self.perpendicular.setVisible(False)


class MeasurementPanel(QWidget):
    """Area, longest diameter and perpendicular of the nodule on the frame shown."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.area = self._value()
        self.diameter = self._value()
        self.perpendicular = self._value()
        self.note = QLabel("")
        self.note.setObjectName("InfoLabel")
        self.note.setWordWrap(True)
        self.copy_button = QPushButton("Copy")
        self.copy_button.setToolTip("Copy the measurements as one line of text")
        self.copy_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.copy_button.clicked.connect(self.copy)
        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow(self._label("Area"), self.area)
        form.addRow(self._label("Longest diameter"), self.diameter)
        form.addRow(self._label("Perpendicular"), self.perpendicular)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(form)
        lay.addWidget(self.note)
        lay.addWidget(self.copy_button, 0, Qt.AlignmentFlag.AlignRight)
        self.text = ""
        self.show_measurement(None, None)

    def _value(self) -> QLabel:
        v = QLabel("–")
        v.setObjectName("InfoValue")
        v.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        return v

    def _label(self, text: str) -> QLabel:
        lab = QLabel(text)
        lab.setObjectName("InfoLabel")
        return lab

    def show_measurement(self, m: Measurement | None, frame_index: int | None, calibrated: bool = True,
                         warning: str | None = None) -> None:
        if m is None:
            for v in (self.area, self.diameter, self.perpendicular):
                v.setText("–")
            self.text = ""
            self.copy_button.setEnabled(False)
            self.note.setText("No mask on this frame.")
            return
        if m.unit == "mm" and m.area_mm2 is not None:
            self.area.setText(f"{m.area_mm2:.1f} mm²")
        else:
            self.area.setText(f"{m.area_px} px²")
        self.diameter.setText(f"{m.diameter:.1f} {m.unit}")
        self.perpendicular.setText(f"{m.perpendicular:.1f} {m.unit}")
        prefix = f"Frame {frame_index + 1}: " if frame_index is not None else ""
        self.text = prefix + m.summary()
        self.copy_button.setEnabled(True)
        notes = [] if m.unit == "mm" else ["The file has no pixel spacing, so sizes are in pixels."]
        if warning:
            notes.insert(0, OUT_OF_RANGE_NOTE)
        self.note.setText(" ".join(notes))
        self.note.setToolTip(warning or "")  # the reasons, in full
        self.note.setStyleSheet(f"color: {WARNING};" if warning else "")

    def copy(self) -> None:
        if self.text:
            QGuiApplication.clipboard().setText(self.text)


def anchor_below(mask: np.ndarray) -> tuple[float, float, bool]:
    """Where a tag about the mask goes: (x, y, right-aligned) just below it (above it near the frame's bottom),
    from its left edge, or up to its right edge when it lies in the right half of the frame."""
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return 0.0, 0.0, False
    h, w = mask.shape
    bottom = float(rows.max() + 1)
    y = bottom + 4 if bottom < h * 0.93 else max(0.0, float(rows.min()) - 0.07 * h)
    right = (cols.min() + cols.max()) / 2 > w / 2
    return (float(cols.max() + 1) if right else float(cols.min())), y, bool(right)
