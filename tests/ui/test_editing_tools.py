"""Editing tools driven by real mouse and key events on the canvas, also zoomed and panned."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from tnseg_desktop.engine.session import Origin
from tnseg_desktop.store import AnnotationStore
from tnseg_desktop.ui.editing_controller import attach_editing
from tnseg_desktop.ui.model_provider import FixedModels

from .editing_helpers import BrightAuto, DiscRefiner, ctrl_wheel, drag, pixel_pos, zoom_and_pan
from .fake_cine import FakeOpener


@pytest.fixture
def editing(make_window, qtbot, tmp_path):
    window = make_window(FakeOpener(n_frames=6, fps=25.0))
    ctl = attach_editing(window, provider=FixedModels(auto=BrightAuto(), refiner=DiscRefiner()),
                         store=AnnotationStore(tmp_path / "store"), ask_recovery=False)
    # pytest-qt closes the window before fixtures tear down: no question box then
    window.close_guards.remove(ctl.confirm_close)
    qtbot.waitUntil(lambda: ctl.models.refiner is not None, timeout=5000)
    window.open_path("/data/loop.dcm")
    qtbot.waitUntil(lambda: window.displayed_index == 0 and ctl.study_id is not None, timeout=5000)
    window.activateWindow()
    window.canvas.setFocus()
    yield window, ctl
    ctl.shutdown()


def _mask(ctl, index=0) -> np.ndarray:
    m = ctl.session.mask(index)
    return np.zeros((48, 64), bool) if m is None else m


def _disc(row, col, r=DiscRefiner.RADIUS):
    yy, xx = np.mgrid[:48, :64]
    return (yy - row) ** 2 + (xx - col) ** 2 <= r ** 2


@pytest.mark.parametrize("zoomed", [False, True])
def test_click_tool_adds_with_left_and_removes_with_right_or_shift(editing, qtbot, zoomed):
    window, ctl = editing
    if zoomed:
        zoom_and_pan(window.canvas)
    ctl.set_tool("click")
    vp = window.canvas.viewport()
    qtbot.mouseClick(vp, Qt.MouseButton.LeftButton, pos=pixel_pos(window.canvas, 20, 30))
    qtbot.waitUntil(lambda: _mask(ctl)[20, 30], timeout=5000)
    assert np.array_equal(_mask(ctl), _disc(20, 30))
    qtbot.mouseClick(vp, Qt.MouseButton.LeftButton, pos=pixel_pos(window.canvas, 20, 36))
    qtbot.waitUntil(lambda: _mask(ctl)[20, 36], timeout=5000)
    qtbot.mouseClick(vp, Qt.MouseButton.RightButton, pos=pixel_pos(window.canvas, 20, 30))
    qtbot.waitUntil(lambda: not _mask(ctl)[20, 30], timeout=5000)
    qtbot.wait(QApplication.doubleClickInterval() + 50)  # two left clicks in a row would make a double click
    qtbot.mouseClick(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier, pos=pixel_pos(window.canvas, 20, 36))
    qtbot.waitUntil(lambda: not _mask(ctl)[20, 36], timeout=5000)
    clicks = ctl.session.prompts(0).clicks
    assert [(c.row, c.col, c.positive) for c in clicks] == [(20, 30, True), (20, 36, True), (20, 30, False), (20, 36, False)]
    qtbot.waitUntil(lambda: len(ctl.markers.points) == 4)
    assert ctl.session.origin(0) is Origin.REFINED


@pytest.mark.parametrize("zoomed", [False, True])
def test_box_tool_drag_sets_the_box(editing, qtbot, zoomed):
    window, ctl = editing
    if zoomed:
        zoom_and_pan(window.canvas, 8.0, 6.0, 40.0)
    ctl.set_tool("box")
    drag(qtbot, window.canvas, [(10, 12), (30, 40)])
    qtbot.waitUntil(lambda: ctl.session.prompts(0).box is not None, timeout=5000)
    r0, c0, r1, c1 = ctl.session.prompts(0).box
    # the box runs between the pressed and released pixels' centres (within a pixel)
    assert abs(r0 - 10.5) <= 1 and abs(c0 - 12.5) <= 1 and abs(r1 - 30.5) <= 1 and abs(c1 - 40.5) <= 1
    m = _mask(ctl)
    assert m[r0:r1, c0:c1].all() and m.sum() == (r1 - r0) * (c1 - c0)
    qtbot.waitUntil(ctl.markers.box.isVisible)


@pytest.mark.parametrize("zoomed", [False, True])
def test_brush_paints_and_eraser_removes_at_image_resolution(editing, qtbot, zoomed):
    window, ctl = editing
    if zoomed:
        zoom_and_pan(window.canvas, 14.0, 10.0, 32.0)
    ctl.set_tool("brush")
    ctl.brush_size.set(2)
    drag(qtbot, window.canvas, [(20, 20), (20, 40)])
    m = _mask(ctl)
    assert m[20, 20:41].all() and m[18:23, 30].all()
    assert not m[24, 30] and not m[20, 45]
    assert m.shape == (48, 64)
    ctl.set_tool("eraser")
    ctl.brush_size.set(1)
    drag(qtbot, window.canvas, [(15, 30), (25, 30)])
    m = _mask(ctl)
    assert not m[18:23, 30].any() and m[20, 25] and m[20, 35]
    # one stroke is one undo step
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert _mask(ctl)[20, 30]
    assert ctl.session.origin(0) is Origin.PAINTED


def test_brush_size_keys_and_ctrl_wheel_and_round_cursor(editing, qtbot):
    window, ctl = editing
    ctl.set_tool("brush")
    ctl.brush_size.set(10)
    qtbot.keyClick(window, Qt.Key.Key_BracketRight)
    assert ctl.brush_size.radius == 12
    qtbot.keyClick(window, Qt.Key.Key_BracketLeft)
    assert ctl.brush_size.radius < 12
    before_view = window.canvas.visible_image_rect()
    r = ctl.brush_size.radius
    ctrl_wheel(window.canvas, 20, 20, 1)
    assert ctl.brush_size.radius > r
    assert window.canvas.visible_image_rect() == before_view  # Ctrl+wheel resized the brush, it did not zoom
    assert ctl.mask_controls.brush_spin.value() == ctl.brush_size.radius
    qtbot.mouseMove(window.canvas.viewport(), pixel_pos(window.canvas, 24, 30))
    qtbot.waitUntil(lambda: ctl.brush_cursor.item.isVisible())
    rect = ctl.brush_cursor.item.rect()
    assert abs(rect.width() - (2 * ctl.brush_size.radius + 1)) < 1e-6
    assert abs(rect.center().x() - 30.5) < 1e-6 and abs(rect.center().y() - 24.5) < 1e-6


def test_tool_keys_and_mask_commands(editing, qtbot):
    window, ctl = editing
    for key, name in ((Qt.Key.Key_B, "brush"), (Qt.Key.Key_E, "eraser"), (Qt.Key.Key_X, "box"), (Qt.Key.Key_C, "click")):
        qtbot.keyClick(window, key)
        assert ctl.tool_name == name
    ctl.set_tool("brush")
    ctl.brush_size.set(8)
    qtbot.mouseClick(window.canvas.viewport(), Qt.MouseButton.LeftButton, pos=pixel_pos(window.canvas, 24, 32))
    ctl.set_tool("eraser")
    ctl.brush_size.set(2)
    qtbot.mouseClick(window.canvas.viewport(), Qt.MouseButton.LeftButton, pos=pixel_pos(window.canvas, 24, 32))
    assert not _mask(ctl)[24, 32]
    qtbot.keyClick(window, Qt.Key.Key_H)  # fill holes
    assert _mask(ctl)[24, 32]
    qtbot.keyClick(window, Qt.Key.Key_Delete)
    assert not _mask(ctl).any()
    assert ctl.session.mask(0) is not None  # an explicit empty mask


def test_undo_and_redo_through_the_keys(editing, qtbot):
    window, ctl = editing
    ctl.set_tool("brush")
    ctl.brush_size.set(3)
    qtbot.mouseClick(window.canvas.viewport(), Qt.MouseButton.LeftButton, pos=pixel_pos(window.canvas, 10, 10))
    qtbot.mouseClick(window.canvas.viewport(), Qt.MouseButton.LeftButton, pos=pixel_pos(window.canvas, 30, 50))
    both = _mask(ctl).copy()
    ctrl, shift = Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.ShiftModifier
    qtbot.keyClick(window, Qt.Key.Key_Z, ctrl)
    assert _mask(ctl)[10, 10] and not _mask(ctl)[30, 50]
    qtbot.keyClick(window, Qt.Key.Key_Z, ctrl)
    assert not _mask(ctl).any()
    qtbot.keyClick(window, Qt.Key.Key_Z, ctrl | shift)
    assert _mask(ctl)[10, 10] and not _mask(ctl)[30, 50]
    qtbot.keyClick(window, Qt.Key.Key_Y, ctrl)
    assert np.array_equal(_mask(ctl), both)
    # the overlay shows what the session holds
    qtbot.waitUntil(lambda: ctl.overlay.mask() is not None and np.array_equal(ctl.overlay.mask(), both))


def test_frame_keys_move_and_edits_follow_the_frame(editing, qtbot):
    window, ctl = editing
    qtbot.keyClick(window, Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: window.displayed_index == 1)
    ctl.set_tool("brush")
    qtbot.mouseClick(window.canvas.viewport(), Qt.MouseButton.LeftButton, pos=pixel_pos(window.canvas, 10, 10))
    assert ctl.session.mask(1)[10, 10] and ctl.session.mask(0) is None
    assert ctl.strip.states()[1].name == "EDITED"
    qtbot.keyClick(window, Qt.Key.Key_Left)
    qtbot.waitUntil(lambda: window.displayed_index == 0)
    qtbot.waitUntil(lambda: ctl.overlay.mask() is None)


def test_segment_all_frames_fills_every_frame_and_can_be_followed(editing, qtbot):
    window, ctl = editing
    ctl.set_tool("brush")
    qtbot.mouseClick(window.canvas.viewport(), Qt.MouseButton.LeftButton, pos=pixel_pos(window.canvas, 5, 5))
    job = ctl.segment_all()
    assert job is not None and ctl.model_panel.progress.isVisible()
    qtbot.waitUntil(lambda: ctl.jobs.batch_job is None, timeout=10000)
    origins = ctl.session.origins()
    assert origins[0] is Origin.PAINTED  # the user's frame keeps its mask
    assert all(o is Origin.AUTO for o in origins[1:])
    assert [s.name for s in ctl.strip.states()[1:]] == ["AUTO"] * 5
    assert not ctl.model_panel.progress.isVisible()
    expected = np.asarray(window.cached_frame(0) if False else ctl.session.frame(3)) > 100
    assert np.array_equal(ctl.session.mask(3), expected)
