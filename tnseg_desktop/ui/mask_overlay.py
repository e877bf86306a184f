"""The mask on the canvas: a translucent fill and/or its contour, with adjustable opacity."""

from __future__ import annotations

import cv2
import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsPathItem

from tnseg_desktop.ui.canvas import Z_CONTOUR, Z_MASK, CineCanvas

MASK_COLOUR = (255, 196, 64)  # warm amber: visible on grey ultrasound, not a diagnostic red
CONTOUR_COLOUR = "#ffd166"


def contour_path(mask: np.ndarray) -> QPainterPath:
    """The outline of every component (and hole) along pixel edges, in image coordinates."""
    m = np.ascontiguousarray(mask, dtype=np.uint8)
    if not m.any():
        return QPainterPath()
    # contours of a 2x upsampled mask follow pixel corners instead of pixel centres
    big = cv2.resize(m, (m.shape[1] * 2, m.shape[0] * 2), interpolation=cv2.INTER_NEAREST)
    contours, _ = cv2.findContours(big, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    # one closed polyline per contour, all handed to Qt in one array call (a noisy mask has hundreds)
    rings = [np.concatenate([c.reshape(-1, 2), c.reshape(-1, 2)[:1]]) for c in contours]
    pts = (np.concatenate(rings).astype(np.float64) + 0.5) / 2.0
    connect = np.ones(len(pts), dtype=np.int32)
    connect[np.cumsum([len(r) for r in rings]) - 1] = 0  # no line from one ring's end to the next ring
    return pg.arrayToQPath(pts[:, 0], pts[:, 1], connect=connect)


class MaskOverlay:
    """Owns the fill and contour layers of one canvas."""

    def __init__(self, canvas: CineCanvas, opacity: float = 0.35) -> None:
        self.canvas = canvas
        self.fill_item = pg.ImageItem(axisOrder="row-major")
        self.contour_item = QGraphicsPathItem()
        pen = QPen(QColor(CONTOUR_COLOUR))
        pen.setCosmetic(True)  # the same screen width at any zoom
        pen.setWidthF(1.6)
        pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
        self.contour_item.setPen(pen)
        canvas.add_layer(self.fill_item, Z_MASK)
        canvas.add_layer(self.contour_item, Z_CONTOUR)
        self._opacity = float(opacity)
        self._fill_on = True
        self._contour_on = True
        self._mask: np.ndarray | None = None

    # --- state --------------------------------------------------------------
    @property
    def opacity(self) -> float:
        return self._opacity

    def set_opacity(self, value: float) -> None:
        self._opacity = min(1.0, max(0.0, float(value)))
        self.fill_item.setOpacity(self._opacity)

    def set_fill_visible(self, on: bool) -> None:
        self._fill_on = bool(on)
        self.fill_item.setVisible(self._fill_on)

    def set_contour_visible(self, on: bool) -> None:
        self._contour_on = bool(on)
        self.contour_item.setVisible(self._contour_on)

    @property
    def fill_visible(self) -> bool:
        return self._fill_on

    @property
    def contour_visible(self) -> bool:
        return self._contour_on

    def mask(self) -> np.ndarray | None:
        return self._mask

    # --- drawing ------------------------------------------------------------
    def set_mask(self, mask: np.ndarray | None, outline: bool = True) -> None:
        """Show ``mask`` (bool HxW at frame resolution); None or empty hides both layers.

        ``outline=False`` skips the outline (cheap enough for every frame of a playing loop).
        """
        self._mask = None if mask is None else np.asarray(mask, dtype=bool)
        if self._mask is None or not self._mask.any():
            self.fill_item.clear()
            self.contour_item.setPath(QPainterPath())
            return
        m = self._mask
        rgba = np.zeros(m.shape + (4,), dtype=np.uint8)
        rgba[m] = (*MASK_COLOUR, 255)
        self.fill_item.setImage(rgba, autoLevels=False, levels=(0, 255))
        self.fill_item.setOpacity(self._opacity)
        self.fill_item.setVisible(self._fill_on)
        self.contour_item.setPath(contour_path(m) if outline else QPainterPath())
        self.contour_item.setVisible(self._contour_on)
