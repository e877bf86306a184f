"""Mouse tools for the canvas: click (refine), box, brush and eraser.

Each tool implements the canvas's tool interface (``click``/``drag``/``wheel``
get events already mapped to image coordinates) and tells a
:class:`ToolTarget` (the editing controller) what the user did, in frame
pixels. Painting therefore happens at the image's own resolution whatever the
zoom: the stroke is a list of pixel centres and a radius in pixels.
"""

from __future__ import annotations

import uuid
from typing import Protocol

from PySide6.QtCore import QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import QGraphicsEllipseItem

from tnseg_desktop.ui.canvas import Z_MARKERS, CineCanvas, ImagePoint
from tnseg_desktop.ui.prompt_markers import PromptMarkers

MIN_RADIUS, MAX_RADIUS = 1, 200


class ToolTarget(Protocol):
    def tool_click(self, row: int, col: int, positive: bool) -> None: ...

    def tool_box(self, box: tuple[int, int, int, int] | None) -> None: ...

    def tool_paint(self, points: list[tuple[int, int]], radius: int, erase: bool, stroke: str) -> None: ...


def _shift(ev) -> bool:
    return bool(ev.modifiers() & Qt.KeyboardModifier.ShiftModifier)


def _resize_modifier(ev) -> bool:
    mods = ev.modifiers()
    return bool(mods & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier))


class BrushSize(QObject):
    """The radius (pixels of the frame) shared by brush and eraser."""

    changed = Signal(int)

    def __init__(self, radius: int = 6) -> None:
        super().__init__()
        self._radius = radius

    @property
    def radius(self) -> int:
        return self._radius

    def set(self, radius: int) -> None:
        r = max(MIN_RADIUS, min(MAX_RADIUS, int(radius)))
        if r != self._radius:
            self._radius = r
            self.changed.emit(r)

    def grow(self) -> None:
        self.set(self._radius + max(1, self._radius // 5))

    def shrink(self) -> None:
        self.set(self._radius - max(1, self._radius // 5))


class ClickTool:
    """Left click adds to the nodule; right click or Shift+left click removes."""

    name = "click"
    cursor = Qt.CursorShape.CrossCursor

    def __init__(self, target: ToolTarget) -> None:
        self.target = target

    def click(self, point: ImagePoint, ev) -> bool:
        if ev.button() == Qt.MouseButton.LeftButton:
            self.target.tool_click(point.row, point.col, positive=not _shift(ev))
            return True
        if ev.button() == Qt.MouseButton.RightButton:
            self.target.tool_click(point.row, point.col, positive=False)
            return True
        return False

    def drag(self, point: ImagePoint, ev) -> bool:
        return False  # dragging still pans

    def wheel(self, point: ImagePoint, ev) -> bool:
        return False


class BoxTool:
    """Drag a box around the nodule; right click removes the box."""

    name = "box"
    cursor = Qt.CursorShape.CrossCursor

    def __init__(self, target: ToolTarget, canvas: CineCanvas, markers: PromptMarkers) -> None:
        self.target = target
        self.canvas = canvas
        self.markers = markers

    def click(self, point: ImagePoint, ev) -> bool:
        if ev.button() == Qt.MouseButton.RightButton:
            self.target.tool_box(None)
            return True
        return ev.button() == Qt.MouseButton.LeftButton

    def drag(self, point: ImagePoint, ev) -> bool:
        if ev.button() != Qt.MouseButton.LeftButton:
            return False
        start = self.canvas.scene_to_image(ev.buttonDownScenePos())
        rect = QRectF(QPointF(start.x, start.y), QPointF(point.x, point.y)).normalized()
        if ev.isFinish():
            self.markers.show_preview(None)
            shape = self.canvas.frame_shape() or (0, 0)
            r0 = max(0, int(round(rect.top())))
            c0 = max(0, int(round(rect.left())))
            r1 = min(shape[0], int(round(rect.bottom())))
            c1 = min(shape[1], int(round(rect.right())))
            self.target.tool_box((r0, c0, r1, c1))
        else:
            self.markers.show_preview(rect)
        return True

    def wheel(self, point: ImagePoint, ev) -> bool:
        return False


class BrushTool:
    """Paints (or, as the eraser, removes) a round brush along the mouse path."""

    cursor = Qt.CursorShape.BlankCursor

    def __init__(self, target: ToolTarget, canvas: CineCanvas, size: BrushSize, erase: bool = False) -> None:
        self.target = target
        self.canvas = canvas
        self.size = size
        self.erase = erase
        self.name = "eraser" if erase else "brush"
        self._stroke = ""
        self._last: tuple[int, int] | None = None

    def click(self, point: ImagePoint, ev) -> bool:
        if ev.button() != Qt.MouseButton.LeftButton:
            return False
        self.target.tool_paint([(point.row, point.col)], self.size.radius, self.erase, uuid.uuid4().hex)
        return True

    def drag(self, point: ImagePoint, ev) -> bool:
        if ev.button() != Qt.MouseButton.LeftButton:
            return False
        here = (point.row, point.col)
        if ev.isStart():
            self._stroke = uuid.uuid4().hex
            start = self.canvas.scene_to_image(ev.buttonDownScenePos())
            self._last = (start.row, start.col)
        pts = [here] if self._last is None else [self._last, here]
        self.target.tool_paint(pts, self.size.radius, self.erase, self._stroke)
        self._last = None if ev.isFinish() else here
        return True

    def wheel(self, point: ImagePoint, ev) -> bool:
        if not _resize_modifier(ev):
            return False
        delta = ev.delta() if hasattr(ev, "delta") else ev.angleDelta().y()
        if delta > 0:
            self.size.grow()
        elif delta < 0:
            self.size.shrink()
        return True


class BrushCursor:
    """A circle that follows the mouse and shows the brush's true size on the image."""

    def __init__(self, canvas: CineCanvas, size: BrushSize, colour: str = "#ffffff") -> None:
        self.canvas = canvas
        self.size = size
        self.item = QGraphicsEllipseItem()
        pen = QPen(QColor(colour))
        pen.setCosmetic(True)
        pen.setWidthF(1.2)
        self.item.setPen(pen)
        self.item.setVisible(False)
        canvas.add_layer(self.item, Z_MARKERS + 1)
        self._pos: tuple[int, int] | None = None
        self.enabled = False
        canvas.scene().sigMouseMoved.connect(self._moved)
        size.changed.connect(lambda _r: self._redraw())

    def set_enabled(self, on: bool, erase: bool = False) -> None:
        self.enabled = on
        pen = self.item.pen()
        pen.setColor(QColor("#ff8a8a" if erase else "#ffffff"))
        self.item.setPen(pen)
        self._redraw()

    def _moved(self, scene_pos) -> None:
        p = self.canvas.scene_to_image(scene_pos)
        self._pos = (p.row, p.col)
        self._redraw()

    def _redraw(self) -> None:
        if not self.enabled or self._pos is None:
            self.item.setVisible(False)
            return
        r = self.size.radius + 0.5
        row, col = self._pos
        self.item.setRect(QRectF(col + 0.5 - r, row + 0.5 - r, 2 * r, 2 * r))
        self.item.setVisible(True)
