"""The default automatic mask, tnseg-med+lite, on the real shipped weights and a real ddti/val frame."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tnseg_desktop.model.ensemble import ENSEMBLE, MeanEnsemble
from tnseg_desktop.model.resolve import accepts_text_prompt, available_auto_models, default_auto_model, load_auto_segmenter
from tnseg_desktop.training.data import read_gray
from tnseg_desktop.training.metrics import dice


@pytest.fixture(scope="module")
def ensemble() -> MeanEnsemble:
    torch.set_num_threads(1)
    ens = load_auto_segmenter(ENSEMBLE, torch.device("cpu"))
    cache: dict[bytes, np.ndarray] = {}
    own = ens.med.embedding

    def embed(frame: np.ndarray) -> np.ndarray:  # one encoder pass per frame for the whole module
        key = frame.tobytes()
        if key not in cache:
            ens.med.set_embed(None)
            cache[key] = own(frame)
            ens.med.set_embed(embed)
        return cache[key]

    ens.set_embed(embed)
    return ens


@pytest.fixture(scope="module")
def frame(shared_data):
    path = sorted((shared_data / "ddti" / "val" / "images").glob("*.png"))[5]
    return read_gray(path), read_gray(shared_data / "ddti" / "val" / "masks" / path.name) > 127


def test_a_fresh_install_segments_with_the_ensemble_first():
    assert default_auto_model() == ENSEMBLE
    assert available_auto_models()[:3] == [ENSEMBLE, "tnseg-lite", "tnseg-med"]
    assert accepts_text_prompt(ENSEMBLE)


def test_its_mask_is_the_mean_of_both_networks(ensemble, frame):
    image, truth = frame
    mean = ensemble.auto_probs([image])[0]
    med = ensemble.med.auto_probs([image])[0]
    lite = ensemble.lite.auto_probs([image])[0]
    assert mean.shape == image.shape and mean.dtype == np.float32
    np.testing.assert_allclose(mean, (med + lite) / 2, atol=1e-6)
    assert not np.allclose(med, lite, atol=0.05)  # two different networks, so the mean is not either one
    assert dice(mean >= 0.5, truth) > 0.6


def test_a_gland_prompt_is_answered_by_both_tnseg_med_files_not_tnseg_lite(ensemble, frame):
    image, _ = frame
    assert ensemble.gland is not None  # tnseg-med-conv ships in models/
    gland = ensemble.prob_map(image, "thyroid gland")
    sam_branch = ensemble.med.prob_map(image, "thyroid gland")
    conv_branch = ensemble.gland.prob_map(image, "thyroid gland")
    np.testing.assert_allclose(gland, (sam_branch + conv_branch) / 2, atol=1e-6)
    assert not np.allclose(sam_branch, conv_branch, atol=0.05)
    # a nodule phrase selects the nodule, which is the pair's learned default (measured better than the phrase)
    nodule = ensemble.prob_map(image, "thyroid nodule")
    np.testing.assert_allclose(nodule, ensemble.auto_probs([image])[0], atol=1e-6)
    np.testing.assert_allclose(ensemble.prob_map(image, "a nodule in the thyroid"), nodule, atol=1e-6)
    assert not np.allclose(ensemble.med.prob_map(image, "thyroid nodule"), ensemble.med.auto_probs([image])[0], atol=1e-3)


def test_a_damaged_member_is_named_not_silently_replaced(tmp_path):
    from tnseg_desktop.model import registry
    from tnseg_desktop.paths import shipped_models_dir, user_models_dir

    bad = user_models_dir() / "tnseg-med.safetensors"  # looked for before the shipped file
    bad.parent.mkdir(parents=True, exist_ok=True)
    data = bytearray((shipped_models_dir() / "tnseg-med.safetensors").read_bytes())
    bad.write_bytes(bytes(data[:-64]))  # a truncated copy
    assert ENSEMBLE not in available_auto_models()
    assert default_auto_model() == ENSEMBLE  # not tnseg-lite alone: using it says which file is damaged
    with pytest.raises(registry.ModelCorrupt, match="tnseg-med"):
        load_auto_segmenter(ENSEMBLE, torch.device("cpu"))
