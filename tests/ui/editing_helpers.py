"""Shared pieces of the editing-UI tests: deterministic and tiny models, a window with editing attached."""

from __future__ import annotations

import numpy as np
import torch
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication
import tiny_text_seg

from tnseg_desktop.engine.refiner_base import Prompts


class DiscRefiner:
    """A refiner whose answer is known: discs of radius 4 at clicks (added or removed), the box filled."""

    name = "disc"
    needs_embedding = False
    RADIUS = 4

    def prepare(self, frame): return None

    def is_prepared(self, frame): return True

    def invalidate(self): return None

    def refine(self, frame, prior, prompts: Prompts) -> np.ndarray:
        h, w = frame.shape[:2]
        out = np.zeros((h, w), bool) if prior is None else prior.astype(bool).copy()
        if prompts.box is not None:
            r0, c0, r1, c1 = prompts.box
            out[r0:r1, c0:c1] = True
        yy, xx = np.mgrid[:h, :w]
        for c in prompts.clicks:
            disc = (yy - c.row) ** 2 + (xx - c.col) ** 2 <= self.RADIUS ** 2
            out = out | disc if c.positive else out & ~disc
        return out


class BrightAuto:
    """An automatic 'model': pixels brighter than 100 (known answer, no network)."""

    def auto_probs(self, frames):
        return [(np.asarray(f, dtype=np.float32) > 100).astype(np.float32) for f in frames]


class TinyTextSeg(tiny_text_seg.TinyTextSeg):
    def __init__(self, seed: int = 0) -> None:
        # the editing tests' frames are dim gradients: centre the brightness skip low so the map finds a region
        super().__init__(seed, brightness_centre=0.3)


def tiny_lite_refiner():
    from tnseg_desktop.engine.lite_refiner import LiteRefiner
    from tnseg_desktop.model.lite import TnsegLite

    torch.manual_seed(0)
    return LiteRefiner(TnsegLite(base_channels=8, head_hidden=16, input_size=64), "cpu")


def pixel_pos(canvas, row: int, col: int) -> QPoint:
    return canvas.image_to_widget(col + 0.5, row + 0.5).toPoint()


def zoom_and_pan(canvas, x0: float = 6.0, y0: float = 4.0, width: float = 48.0) -> None:
    """Zoom in and pan: show columns x0..x0+width (and as many rows as the aspect allows) from (x0, y0)."""
    canvas.view_box.setRange(QRectF(x0, y0, width, width * 0.75), padding=0)
    QApplication.processEvents()
    rect = canvas.visible_image_rect()
    assert rect.width() < 60 and rect.left() > 1, "the view should be zoomed in and panned"


def drag(qtbot, canvas, path: list[tuple[int, int]], button=Qt.MouseButton.LeftButton) -> None:
    """Press at the first (row, col), move through the rest in small steps, release at the last."""
    vp = canvas.viewport()
    qtbot.wait(QApplication.doubleClickInterval() + 50)  # a press soon after a release would be a double click
    qtbot.mousePress(vp, button, pos=pixel_pos(canvas, *path[0]))
    for (r0, c0), (r1, c1) in zip(path[:-1], path[1:]):
        for t in np.linspace(0, 1, 6)[1:]:
            qtbot.mouseMove(vp, pixel_pos(canvas, round(r0 + (r1 - r0) * t), round(c0 + (c1 - c0) * t)))
    qtbot.mouseRelease(vp, button, pos=pixel_pos(canvas, *path[-1]))


def ctrl_wheel(canvas, row: int, col: int, steps: int) -> None:
    vp = canvas.viewport()
    pos = QPointF(pixel_pos(canvas, row, col))
    ev = QWheelEvent(pos, QPointF(vp.mapToGlobal(pos.toPoint())), QPoint(), QPoint(0, 120 * steps),
                     Qt.MouseButton.NoButton, Qt.KeyboardModifier.ControlModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(vp, ev)
