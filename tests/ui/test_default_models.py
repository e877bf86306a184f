"""What a fresh install segments with: the provider's defaults on the real shipped and package weights.

tnseg-med+lite (the automatic mask: the mean of tnseg-med and tnseg-lite), tnseg-med's text prompts
and litemedsam-thyroid (boxes and clicks) share one LiteMedSAM embedding per frame; a retraining on the
user's edits makes its tnseg-lite the automatic model.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tnseg_desktop.model.prompt_targets import UnknownTarget
from tnseg_desktop.store import AnnotationStore
from tnseg_desktop.training.data import read_gray
from tnseg_desktop.training.metrics import dice
from tnseg_desktop.ui.model_provider import ModelProvider


@pytest.fixture(scope="module")
def loaded():
    torch.set_num_threads(1)
    return ModelProvider(device="cpu").load(None, None)


def _frame(shared_data, i: int = 3):
    path = sorted((shared_data / "ddti" / "val" / "images").glob("*.png"))[i]
    truth = read_gray(shared_data / "ddti" / "val" / "masks" / path.name) > 127
    return read_gray(path), truth


def test_fresh_install_defaults_are_the_ensemble_and_litemedsam_thyroid(loaded):
    assert loaded.problems == []
    assert loaded.auto_name == "tnseg-med+lite"  # ddti/val: 0.770, tnseg-lite 0.762, tnseg-med 0.736
    assert loaded.refiner_name == "litemedsam+tnseg-lite"
    assert hasattr(loaded.clip, "prob_map")  # the text field is driven by tnseg-med, no CLIP file needed


def test_the_automatic_mask_is_outlined_by_the_box_tools_litemedsam(loaded, shared_data):
    from tnseg_desktop.engine.refiner_base import Prompts
    from tnseg_desktop.engine.sam_polish import SamPolished
    from tnseg_desktop.engine.text_prompt import prompts_from_prob_map

    assert isinstance(loaded.auto, SamPolished) and loaded.auto.sam is loaded.refiner.box_refiner
    frame, truth = _frame(shared_data, 7)
    polished = loaded.auto.auto_probs([frame])[0] >= 0.5
    boxed = loaded.refiner.refine(frame, None, Prompts(box=prompts_from_prob_map(loaded.auto.judged_probs([frame])[0]).box))
    assert np.array_equal(polished, boxed)  # the mask is what the box tool draws from the map's box
    assert dice(polished, truth) > 0.6


def test_one_embedding_serves_the_automatic_mask_and_the_refiner(loaded, shared_data):
    frame, truth = _frame(shared_data)
    assert not loaded.refiner.is_prepared(frame)
    prob = loaded.clip.auto_probs([frame])[0]
    assert prob.shape == frame.shape
    assert dice(prob >= 0.5, truth) > 0.6
    # the automatic mask's encoder pass is the refiner's cached embedding
    assert loaded.refiner.is_prepared(frame)


def test_text_prompts_select_a_known_target_or_say_which_ones_exist(loaded, shared_data):
    frame, truth = _frame(shared_data)
    nodule = loaded.clip.prob_map(frame, "thyroid nodule") >= 0.5
    gland = loaded.clip.prob_map(frame, "the thyroid gland") >= 0.5
    assert dice(nodule, truth) > 0.6
    assert not np.array_equal(nodule, gland)
    with pytest.raises(UnknownTarget) as info:
        loaded.clip.prob_map(frame, "banana")
    assert "nodule" in str(info.value)


def test_a_retrained_version_in_use_becomes_the_automatic_model(tmp_path):
    from tnseg_desktop.training.versions import ensure_base_version

    store = AnnotationStore(tmp_path / "store")
    provider = ModelProvider(device="cpu", store=store)
    autos = provider.auto_names()
    assert autos[:3] == ["tnseg-med+lite", "tnseg-lite", "tnseg-med"]
    base = ensure_base_version(store)  # the shipped tnseg-lite, recorded as the first version
    assert not provider.retrained_in_use() and provider.default_auto(autos) == "tnseg-med+lite"
    store.record_model_version("v1-my-edits", file=base.file, sha256=base.sha256, parent=base.name, status="active")
    assert provider.retrained_in_use()
    assert provider.default_auto(autos) == "tnseg-lite"
    store.set_active_version(base.name)
    assert not provider.retrained_in_use()


def test_the_text_field_works_on_a_fresh_install_and_thyroid_gland_is_an_undoable_edit(make_window, qtbot, tmp_path, shared_data):
    from PySide6.QtCore import Qt

    from tnseg_desktop.engine.frame_state import Origin
    from tnseg_desktop.ui.editing_controller import attach_editing

    image_path = sorted((shared_data / "ddti" / "val" / "images").glob("*.png"))[3]
    window = make_window()
    window.resize(1280, 800)
    ctl = attach_editing(window, provider=ModelProvider(device="cpu"), store=AnnotationStore(tmp_path / "store"), ask_recovery=False)
    window.close_guards.remove(ctl.confirm_close)
    qtbot.waitUntil(lambda: ctl.models.auto is not None, timeout=60_000)
    assert ctl.models.auto_name == "tnseg-med+lite" and ctl.models.clip is not None
    assert "need" not in ctl.text_field.edit.placeholderText()
    window.open_path(str(image_path))
    qtbot.waitUntil(lambda: window.displayed_index == 0 and ctl.study_id is not None, timeout=20_000)
    edit = ctl.text_field.edit
    qtbot.keyClick(window, Qt.Key.Key_T)
    edit.setText("thyroid gland")
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: ctl.session.prompts(0).text == "thyroid gland" and not ctl.busy, timeout=60_000)
    gland = ctl.session.mask(0).copy()
    assert ctl.session.origin(0) is Origin.REFINED and gland.sum() > 0
    edit.setText("thyroid nodule")
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: ctl.session.prompts(0).text == "thyroid nodule" and not ctl.busy, timeout=60_000)
    nodule = ctl.session.mask(0).copy()
    assert 0 < nodule.sum() < gland.sum()  # the nodule lies inside the gland
    ctl.undo()
    qtbot.waitUntil(lambda: np.array_equal(ctl.session.mask(0), gland), timeout=10_000)
    ctl.shutdown()
