"""The canvas hooks later editing tools rely on: pixel mapping, tool routing, overlay layers."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

from tnseg_desktop.ui.canvas import Z_MASK, CineCanvas


class RecordingTool:
    def __init__(self, take: bool = True) -> None:
        self.take = take
        self.clicks: list[tuple[int, int, object]] = []
        self.drags: list[tuple[int, int]] = []

    def click(self, point, event) -> bool:
        self.clicks.append((point.row, point.col, event.button()))
        return self.take

    def drag(self, point, event) -> bool:
        self.drags.append((point.row, point.col))
        return self.take

    def wheel(self, point, event) -> bool:
        return False


def make_canvas(qtbot, zoom: float = 1.0) -> CineCanvas:
    canvas = CineCanvas()
    qtbot.addWidget(canvas)
    canvas.resize(500, 400)
    canvas.show()
    qtbot.waitExposed(canvas)
    canvas.set_frame(np.arange(60 * 80, dtype=np.uint32).reshape(60, 80).astype(np.uint8))
    canvas.fit()
    if zoom != 1.0:
        canvas.zoom_by(zoom)
        canvas.view_box.translateBy(x=3.0, y=2.0)
    qtbot.wait(30)
    return canvas


def test_clicks_reach_the_tool_at_the_right_pixel_also_zoomed(qtbot):
    for zoom in (1.0, 2.5):
        canvas = make_canvas(qtbot, zoom)
        tool = RecordingTool()
        canvas.set_tool(tool)
        for row, col in ((30, 40), (25, 35)):
            pos = canvas.image_to_widget(col + 0.5, row + 0.5).toPoint()
            qtbot.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, pos=pos)
            qtbot.mouseClick(canvas.viewport(), Qt.MouseButton.RightButton, pos=pos)
        assert [(r, c) for r, c, _ in tool.clicks] == [(30, 40), (30, 40), (25, 35), (25, 35)]
        assert tool.clicks[1][2] == Qt.MouseButton.RightButton


def test_without_a_tool_dragging_pans(qtbot):
    canvas = make_canvas(qtbot, 2.0)
    before = canvas.visible_image_rect()
    start = canvas.image_to_widget(40, 30).toPoint()
    qtbot.mousePress(canvas.viewport(), Qt.MouseButton.LeftButton, pos=start)
    for dx in range(5, 60, 5):
        qtbot.mouseMove(canvas.viewport(), start + type(start)(dx, 0))
    qtbot.mouseRelease(canvas.viewport(), Qt.MouseButton.LeftButton, pos=start + type(start)(60, 0))
    after = canvas.visible_image_rect()
    assert after.left() < before.left() - 1


def test_overlay_layer_shares_image_coordinates(qtbot):
    canvas = make_canvas(qtbot)
    mask = pg.ImageItem(np.zeros((60, 80, 4), np.uint8), axisOrder="row-major")
    canvas.add_layer(mask, Z_MASK)
    assert mask.zValue() > canvas.image_item.zValue()
    assert mask.mapToScene(10, 20) == canvas.image_item.mapToScene(10, 20)
    canvas.remove_layer(mask)
    assert canvas.layers() == []


def test_wheel_zooms_in_about_the_mouse(qtbot):
    from PySide6.QtCore import QPoint, QPointF
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    canvas = make_canvas(qtbot)
    before = canvas.visible_image_rect()
    pos = canvas.image_to_widget(20, 15)
    for _ in range(3):
        ev = QWheelEvent(pos, canvas.viewport().mapToGlobal(pos), QPoint(0, 0), QPoint(0, 120),
                         Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
        QApplication.sendEvent(canvas.viewport(), ev)
    after = canvas.visible_image_rect()
    assert after.width() < before.width() * 0.8
    # the point under the mouse stays under the mouse
    under = canvas.widget_to_image(pos)
    assert abs(under.x - 20) < 0.5 and abs(under.y - 15) < 0.5
    canvas.fit()
    assert canvas.visible_image_rect().contains(QPointF(79.5, 59.5))
