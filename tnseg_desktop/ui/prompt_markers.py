"""Prompt markers on the canvas: green + for positive clicks, red − for negative ones, and the box."""

from __future__ import annotations

from typing import Sequence

import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsRectItem

from tnseg_desktop.ui.canvas import Z_MARKERS, CineCanvas

POSITIVE = "#3ddc84"
NEGATIVE = "#ff5c5c"
BOX = "#7fb8ff"


def _minus_symbol() -> QPainterPath:
    # as long as the "+" and as much ink: its two 1.0 x 0.2 arms cover 0.36 of the unit square
    p = QPainterPath()
    p.addRect(QRectF(-0.5, -0.18, 1.0, 0.36))
    return p


class PromptMarkers:
    """Markers stay the same size on screen at any zoom; the box follows the image."""

    def __init__(self, canvas: CineCanvas, size: int = 15) -> None:
        self.positive = pg.ScatterPlotItem(size=size, symbol="+", pen=pg.mkPen("#0b2e1a", width=1),
                                           brush=pg.mkBrush(POSITIVE), pxMode=True)
        self.negative = pg.ScatterPlotItem(size=size, symbol=_minus_symbol(), pen=pg.mkPen("#3a0d0d", width=1),
                                           brush=pg.mkBrush(NEGATIVE), pxMode=True)
        self.box = QGraphicsRectItem()
        self.preview = QGraphicsRectItem()  # the box being dragged
        for item, style in ((self.box, Qt.PenStyle.SolidLine), (self.preview, Qt.PenStyle.DashLine)):
            pen = QPen(QColor(BOX))
            pen.setCosmetic(True)
            pen.setWidthF(1.5)
            pen.setStyle(style)
            item.setPen(pen)
            item.setVisible(False)
        for item in (self.positive, self.negative):
            # a click on a marker is a click for the tool, not a "point clicked" of the scatter plot
            item.mouseClickEvent = lambda ev: ev.ignore()
            item.hoverEvent = lambda ev: None
        for item in (self.box, self.preview, self.positive, self.negative):
            canvas.add_layer(item, Z_MARKERS)
        self.points: list[tuple[int, int, bool]] = []

    def set_prompts(self, clicks: Sequence[tuple[int, int, bool]], box: tuple[int, int, int, int] | None) -> None:
        """``clicks``: (row, col, positive); ``box``: (row0, col0, row1, col1), exclusive ends."""
        self.points = [(int(r), int(c), bool(p)) for r, c, p in clicks]
        pos = [(c + 0.5, r + 0.5) for r, c, p in self.points if p]
        neg = [(c + 0.5, r + 0.5) for r, c, p in self.points if not p]
        self.positive.setData(pos=pos)
        self.negative.setData(pos=neg)
        if box is None:
            self.box.setVisible(False)
        else:
            r0, c0, r1, c1 = box
            self.box.setRect(QRectF(c0, r0, c1 - c0, r1 - r0))
            self.box.setVisible(True)

    def show_preview(self, rect: QRectF | None) -> None:
        if rect is None:
            self.preview.setVisible(False)
        else:
            self.preview.setRect(rect.normalized())
            self.preview.setVisible(True)
