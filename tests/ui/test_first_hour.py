"""What a new user meets in the first hour (issue 19): no warning about optional models, Accept only with a file,
a negative click as visible as a positive one, the job status in view at 1280x800, an error dialog clear of the
empty window's text, a word beside a mask on a frame unlike the training frames, masks within one view."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PySide6.QtCore import QPoint
from PySide6.QtGui import QColor, QImage, QPainter

from tnseg_desktop.engine.session import Origin
from tnseg_desktop.ui.editing_controller import attach_editing
from tnseg_desktop.ui.model_provider import FixedModels, ModelProvider
from tnseg_desktop.ui.prompt_markers import NEGATIVE, POSITIVE

from .editing_helpers import BrightAuto, DiscRefiner
from .fake_cine import FakeOpener

SHOTS = Path(os.environ.get("TNSEG_TEST_SHOTS", "/tmp/tnseg-first-hour"))


def _save(image: QImage, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    image.save(str(SHOTS / name))


def _colour_pixels(image: QImage, colour: str, tol: int = 40) -> int:
    img = image.convertToFormat(QImage.Format.Format_RGB888)
    w, h = img.width(), img.height()
    a = np.frombuffer(img.constBits(), np.uint8).reshape(h, img.bytesPerLine())[:, : w * 3].reshape(h, w, 3).astype(int)
    c = QColor(colour)
    return int((np.abs(a - np.array([c.red(), c.green(), c.blue()])).max(axis=2) < tol).sum())


@pytest.fixture(scope="module")
def shipped_lite():
    from tnseg_desktop.model.lite_predictor import LitePredictor
    from tnseg_desktop.model.lite_weights import load_lite
    from tnseg_desktop.model.resolve import resolve_lite_weights

    torch.set_num_threads(1)
    return LitePredictor(load_lite(resolve_lite_weights("tnseg-lite"), "cpu"), "cpu")


def test_first_launch_shows_no_warning_about_optional_models(make_window, qtbot):
    window = make_window(FakeOpener(n_frames=4))
    ctl = attach_editing(window, provider=ModelProvider())  # the real registry: only tnseg-lite is installed
    with qtbot.waitSignal(ctl.models_ready, timeout=60_000):
        pass
    assert ctl.models.auto is not None  # the shipped model loaded
    assert not ctl.banner.isVisible() and ctl.banner.missing == []
    _save(window.grab().toImage(), "first_launch.png")
    ctl.shutdown()


def test_accept_is_disabled_until_a_file_is_open(make_window, qtbot):
    window = make_window(FakeOpener(n_frames=4))
    ctl = attach_editing(window, provider=FixedModels(refiner=DiscRefiner()))
    button = ctl.toolbar.widgetForAction(ctl.act_accept)
    assert not ctl.act_accept.isEnabled() and not button.isEnabled()
    _save(ctl.toolbar.grab().toImage(), "accept_without_file.png")
    window.open_path("/data/loop.dcm")
    qtbot.waitUntil(lambda: ctl.session is not None and window.displayed_index == 0, timeout=5000)
    assert ctl.act_accept.isEnabled() and button.isEnabled()
    ctl.shutdown()


def test_the_negative_click_marker_is_as_visible_as_the_positive_one(make_window, qtbot):
    window = make_window(FakeOpener(n_frames=4))
    ctl = attach_editing(window, provider=FixedModels(refiner=DiscRefiner()))
    window.open_path("/data/loop.dcm")
    qtbot.waitUntil(lambda: ctl.session is not None and window.displayed_index == 0, timeout=5000)
    ctl.tool_click(12, 16, True)
    qtbot.waitUntil(lambda: ctl.session.origin(0) is Origin.REFINED and not ctl.busy, timeout=5000)
    ctl.tool_click(36, 48, False)
    qtbot.waitUntil(lambda: len(ctl.session.prompts(0).clicks) == 2 and not ctl.busy, timeout=5000)
    ctl.overlay.set_mask(None)  # the markers alone, on the frame
    qtbot.wait(50)
    shot = window.canvas.grab().toImage()
    _save(shot, "click_markers.png")
    positive, negative = _colour_pixels(shot, POSITIVE), _colour_pixels(shot, NEGATIVE)
    assert positive > 20
    assert negative >= 0.9 * positive, (positive, negative)
    ctl.shutdown()


def test_the_job_status_line_is_in_view_at_1280x800(make_window, qtbot):
    window = make_window(FakeOpener(n_frames=20))
    window.resize(1280, 800)
    ctl = attach_editing(window, provider=FixedModels(auto=BrightAuto(), refiner=DiscRefiner()))
    window.open_path("/data/loop.dcm")
    qtbot.waitUntil(lambda: ctl.session is not None and window.displayed_index == 0, timeout=5000)
    with qtbot.waitSignal(ctl.job_finished, timeout=20_000):
        ctl.segment_all()
    qtbot.wait(100)
    label = ctl.model_panel.job_label
    assert label.text() == "Segmented 20 of 20 frames."
    seen = label.visibleRegion().boundingRect()
    _save(window.grab().toImage(), "side_panel_1280x800.png")
    assert seen.height() >= label.height() and seen.width() > 0, (seen, label.size())
    ctl.shutdown()


def test_an_error_dialog_does_not_cover_the_empty_window_text(make_window, qtbot):
    window = make_window(FakeOpener(n_frames=4))
    window.open_path("/data/bad.dcm")
    qtbot.waitUntil(lambda: window.last_message_box is not None and window.last_message_box.isVisible(), timeout=5000)
    box = window.last_message_box
    text = window.hint_text_rect()
    assert text is not None and text.height() > 0
    frame = box.frameGeometry()
    # a composite of the window and the dialog where it sits, as a screen without a window manager shows them
    shot = window.grab().toImage()
    painter = QPainter(shot)
    painter.drawImage(frame.topLeft() - window.mapToGlobal(QPoint(0, 0)), box.grab().toImage())
    painter.end()
    _save(shot, "error_dialog.png")
    assert not frame.intersects(text), (frame, text)
    assert QPoint(frame.center().x(), frame.top()).y() < window.mapToGlobal(QPoint(0, window.height())).y()
    box.close()


def _real_window(make_window, qtbot, path: Path, provider) -> tuple:
    window = make_window()
    window.resize(1280, 800)
    ctl = attach_editing(window, provider=provider)
    window.open_path(str(path))
    qtbot.waitUntil(lambda: ctl.session is not None and window.displayed_index == 0, timeout=20_000)
    return window, ctl


def _segment(qtbot, ctl) -> None:
    ctl.segment_frame()
    qtbot.waitUntil(lambda: ctl.session.origin(0) is Origin.AUTO and not ctl.busy, timeout=60_000)


def test_a_frame_unlike_the_training_frames_gets_a_word_beside_its_mask(make_window, qtbot, shared_data, shipped_lite, tmp_path):
    from tests.export.conftest import make_ddti_cine

    echo = shared_data / "dicom" / "US-PAL-8-10x-echo.dcm"
    window, ctl = _real_window(make_window, qtbot, echo, FixedModels(auto=shipped_lite, refiner=DiscRefiner()))
    _segment(qtbot, ctl)
    qtbot.waitUntil(ctl.lines.warning.isVisible, timeout=30_000)
    assert "may not be a nodule" in ctl.measurement_panel.note.text()
    _save(window.grab().toImage(), "out_of_range_echo.png")
    # a manual correction is the user's mask: no more warning
    ctl.session.paint_disc(0, 100, 100, 5)
    qtbot.waitUntil(lambda: not ctl.lines.warning.isVisible(), timeout=5000)
    ctl.shutdown()

    thyroid, _ = make_ddti_cine(shared_data, tmp_path / "thyroid.dcm", burned_in=None)
    window2, ctl2 = _real_window(make_window, qtbot, thyroid, FixedModels(auto=shipped_lite, refiner=DiscRefiner()))
    _segment(qtbot, ctl2)
    qtbot.waitUntil(lambda: ctl2.measurement_panel.text != "", timeout=10_000)
    qtbot.wait(300)  # the range check runs on the model worker
    assert not ctl2.busy
    _save(window2.grab().toImage(), "in_range_thyroid.png")
    assert not ctl2.lines.warning.isVisible() and "may not be a nodule" not in ctl2.measurement_panel.note.text()
    ctl2.shutdown()


def test_two_view_frame_masks_and_diameters_stay_in_one_view(make_window, qtbot, shared_data, shipped_lite):
    src = shared_data / "dicom" / "gdcm-US-ALOKA-16.dcm"
    window, ctl = _real_window(make_window, qtbot, src, FixedModels(auto=shipped_lite, refiner=DiscRefiner()))
    views = ctl.views
    assert views.split and len(views.bounds) == 2

    def parts(mask):
        return [int(mask[views.slices(i)].sum()) for i in range(2)]

    _segment(qtbot, ctl)
    auto = ctl.session.mask(0)
    assert auto.sum() > 0 and min(parts(auto)) == 0 and max(parts(auto)) == auto.sum()
    _save(window.grab().toImage(), "two_views_auto.png")
    # a click in the other view: the mask moves there, never spanning both
    other = 1 - int(np.argmax(parts(auto)))
    x0, y0, x1, y1 = views.bounds[other]
    row, col = (y0 + y1) // 2, (x0 + x1) // 2
    ctl.tool_click(row, col, True)
    qtbot.waitUntil(lambda: ctl.session.origin(0) is Origin.REFINED and not ctl.busy, timeout=30_000)
    refined = ctl.session.mask(0)
    assert refined[row, col] and parts(refined)[1 - other] == 0
    # the lines are redrawn after the mask (the auto mask's line may still be on screen for a moment)
    def line_in_view() -> bool:
        line = ctl.lines.diameter.line()
        return ctl.lines.diameter.isVisible() and all(x0 <= x <= x1 + 1 for x in (line.x1(), line.x2()))

    qtbot.waitUntil(line_in_view, timeout=5000)
    _save(window.grab().toImage(), "two_views_click.png")
    ctl.shutdown()
