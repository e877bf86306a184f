"""The image canvas: one frame in a pyqtgraph view, with room for overlays and tools.

Coordinates: the image item sits at the scene origin with one view unit per
pixel, x to the right (columns) and y downwards (rows), so pixel (row, col)
covers the square [col, col+1) x [row, row+1) in view coordinates. Overlay
items added with :meth:`CineCanvas.add_layer` share those coordinates.

Mouse tools (issue 6) plug in with :meth:`CineCanvas.set_tool`: the view box
offers every click, drag and wheel event to the active tool first, already
mapped to image coordinates, and pans/zooms only when the tool declines.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, QPointF, QRectF, Signal
from PySide6.QtWidgets import QGraphicsItem

# z order of the canvas layers; overlays go between the image and the markers
Z_IMAGE = 0
Z_MASK = 10
Z_CONTOUR = 20
Z_MARKERS = 30


@dataclass(frozen=True)
class ImagePoint:
    """A position on the image: continuous (x, y) and the pixel (row, col) under it."""

    x: float
    y: float

    @property
    def row(self) -> int:
        return math.floor(self.y)

    @property
    def col(self) -> int:
        return math.floor(self.x)


class CanvasTool(Protocol):
    """A mouse tool. Each method returns True when it used the event (no pan/zoom then)."""

    def click(self, point: ImagePoint, event: object) -> bool: ...

    def drag(self, point: ImagePoint, event: object) -> bool: ...

    def wheel(self, point: ImagePoint, event: object) -> bool: ...


class _ImageViewBox(pg.ViewBox):
    """A view box that lets the canvas's tool see mouse events before pan/zoom."""

    def __init__(self, canvas: "CineCanvas") -> None:
        super().__init__(invertY=True, lockAspect=True, enableMenu=False)
        self._canvas = canvas

    def mouseClickEvent(self, ev) -> None:  # noqa: N802 (Qt naming)
        if self._canvas._offer_to_tool("click", ev):
            ev.accept()
            return
        super().mouseClickEvent(ev)

    def mouseDragEvent(self, ev, axis=None) -> None:  # noqa: N802
        if self._canvas._offer_to_tool("drag", ev):
            ev.accept()
            return
        super().mouseDragEvent(ev, axis)

    def wheelEvent(self, ev, axis=None) -> None:  # noqa: N802
        if self._canvas._offer_to_tool("wheel", ev):
            ev.accept()
            return
        super().wheelEvent(ev, axis)


class CineCanvas(pg.GraphicsView):
    """Shows one frame; wheel zooms, drag pans, :meth:`fit` shows the whole frame."""

    # pixel under the mouse: row, col, or (-1, -1) when off the image
    hover_pixel = Signal(int, int)

    def __init__(self, parent=None, background: str = "#000000") -> None:
        super().__init__(parent, background=background)
        self.setAcceptDrops(False)  # file drops are handled by the main window
        self.view_box = _ImageViewBox(self)
        self.setCentralItem(self.view_box)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.image_item.setZValue(Z_IMAGE)
        self.view_box.addItem(self.image_item)
        self._levels: tuple[float, float] = (0.0, 255.0)
        self._shape: tuple[int, int] | None = None
        self._tool: CanvasTool | None = None
        self._layers: list[QGraphicsItem] = []
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)

    # --- image ------------------------------------------------------------
    def set_frame(self, frame: np.ndarray) -> None:
        """Show a uint8 HxW or HxWx3 frame; fits the view when the frame size changes."""
        shape = (int(frame.shape[0]), int(frame.shape[1]))
        self.image_item.setImage(frame, autoLevels=False, levels=self._levels)
        if shape != self._shape:
            self._shape = shape
            rows, cols = shape
            # keep wheel zoom within sensible bounds: a few pixels up to ten frames across
            self.view_box.setLimits(minXRange=4, minYRange=4, maxXRange=10 * cols, maxYRange=10 * rows)
            self.fit()

    def blank(self) -> None:
        """Black out the frame (same size and view), e.g. when the asked-for frame failed."""
        image = self.image_item.image
        if image is not None:
            self.image_item.setImage(np.zeros_like(image), autoLevels=False, levels=self._levels)

    def clear(self) -> None:
        self.image_item.clear()
        self._shape = None

    def frame_shape(self) -> tuple[int, int] | None:
        """(rows, cols) of the frame on screen, None when empty."""
        return self._shape

    def displayed_image(self) -> np.ndarray | None:
        return self.image_item.image

    def set_levels(self, low: float, high: float) -> None:
        """Display window: ``low`` maps to black, ``high`` to white (per channel for RGB)."""
        self._levels = (float(low), float(high))
        if self.image_item.image is not None:
            self.image_item.setLevels(self._levels)

    def levels(self) -> tuple[float, float]:
        return self._levels

    def fit(self) -> None:
        """Show the whole frame, centred, as large as the window allows."""
        if self._shape is None:
            return
        rows, cols = self._shape
        self.view_box.setRange(QRectF(0, 0, cols, rows), padding=0.01)

    def zoom_by(self, factor: float) -> None:
        """Zoom about the view centre; factor > 1 zooms in."""
        if factor > 0:
            self.view_box.scaleBy(s=(1.0 / factor, 1.0 / factor))

    def visible_image_rect(self) -> QRectF:
        """The part of view space (image coordinates) on screen."""
        return self.view_box.viewRect()

    # --- overlays ---------------------------------------------------------
    def add_layer(self, item: QGraphicsItem, z: float = Z_MASK) -> None:
        """Add an overlay drawn in image coordinates (mask image, contour, markers)."""
        item.setZValue(z)
        # the canvas keeps the Python object alive as long as the item is in its scene
        self._layers.append(item)
        self.view_box.addItem(item, ignoreBounds=True)

    def remove_layer(self, item: QGraphicsItem) -> None:
        self.view_box.removeItem(item)
        if item in self._layers:
            self._layers.remove(item)

    def layers(self) -> list[QGraphicsItem]:
        return list(self._layers)

    # --- coordinates ------------------------------------------------------
    def scene_to_image(self, scene_pos: QPointF) -> ImagePoint:
        p = self.image_item.mapFromScene(scene_pos)
        return ImagePoint(float(p.x()), float(p.y()))

    def widget_to_image(self, widget_pos: QPoint | QPointF) -> ImagePoint:
        pos = QPointF(widget_pos) if isinstance(widget_pos, QPoint) else widget_pos
        return self.scene_to_image(self.mapToScene(pos.toPoint()))

    def image_to_widget(self, x: float, y: float) -> QPointF:
        """Widget position of image point (x, y); the centre of pixel (r, c) is (c + 0.5, r + 0.5)."""
        scene = self.image_item.mapToScene(QPointF(x, y))
        return QPointF(self.mapFromScene(scene))

    def pixel_at(self, scene_pos: QPointF) -> tuple[int, int] | None:
        """(row, col) of the pixel under a scene position, None outside the frame."""
        pt = self.scene_to_image(scene_pos)
        if self._shape is None or not (0 <= pt.row < self._shape[0] and 0 <= pt.col < self._shape[1]):
            return None
        return pt.row, pt.col

    # --- tools ------------------------------------------------------------
    def set_tool(self, tool: CanvasTool | None) -> None:
        """Route mouse events to ``tool`` first; None restores plain pan/zoom."""
        self._tool = tool

    def tool(self) -> CanvasTool | None:
        return self._tool

    def _offer_to_tool(self, kind: str, ev) -> bool:
        if self._tool is None or self._shape is None:
            return False
        return bool(getattr(self._tool, kind)(self.scene_to_image(ev.scenePos()), ev))

    def _on_mouse_moved(self, scene_pos: QPointF) -> None:
        pixel = self.pixel_at(scene_pos)
        if pixel is None:
            self.hover_pixel.emit(-1, -1)
        else:
            self.hover_pixel.emit(*pixel)

    def keyPressEvent(self, ev) -> None:  # noqa: N802
        # leave frame-stepping keys to the window's shortcuts instead of scrolling the view
        ev.ignore()

    def leaveEvent(self, ev) -> None:  # noqa: N802
        self.hover_pixel.emit(-1, -1)
        super().leaveEvent(ev)

    def resizeEvent(self, ev) -> None:  # noqa: N802
        # keep the whole frame in view on resize unless the user has zoomed in
        super().resizeEvent(ev)
        # pyqtgraph calls this from its constructor before our attributes exist, and from
        # close() after its scene items are deleted
        if getattr(self, "closed", False) or getattr(self, "_shape", None) is None:
            return
        if self._fits_whole_frame():
            self.fit()

    def _fits_whole_frame(self) -> bool:
        rect = self.view_box.viewRect()
        rows, cols = self._shape or (0, 0)
        return rect.width() >= cols * 0.99 and rect.height() >= rows * 0.99
