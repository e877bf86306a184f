"""SAM and MobileSAM refiners end to end with random weights in small configurations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tnseg_desktop.engine.refiner_base import Prompts, Refiner, as_clicks
from tnseg_desktop.engine.sam_refiner import PRIOR_LOGIT, SamRefiner, available_sam_refiners, make_sam_refiner
from tnseg_desktop.errors import UserFacingError
from sam_small import small_mobile_sam, small_sam


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module", params=["sam", "mobilesam"])
def refiner(request) -> SamRefiner:
    model = small_sam() if request.param == "sam" else small_mobile_sam()
    return SamRefiner(model, name=request.param, decoder_bf16=False)


def _frame(h: int = 90, w: int = 150, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    f = rng.integers(20, 60, (h, w), dtype=np.uint8)
    yy, xx = np.mgrid[:h, :w]
    f[(yy - h // 2) ** 2 + (xx - w // 2) ** 2 < (h // 4) ** 2] = 200
    return f


def test_is_a_refiner(refiner):
    assert isinstance(refiner, Refiner)
    assert refiner.needs_embedding


def test_embedding_once_then_cached(refiner):
    f = _frame(seed=1)
    assert not refiner.is_prepared(f)
    computed = refiner.cache.stats.computed
    refiner.prepare(f)
    assert refiner.is_prepared(f)
    emb = refiner.embedding(f)
    g = refiner.img_size // 16
    assert emb.shape == (256, g, g) and emb.dtype == np.float32
    refiner.refine(f, None, Prompts(clicks=as_clicks([(45, 75, True)])))
    assert refiner.cache.stats.computed == computed + 1


def test_grayscale_equals_its_rgb(refiner):
    f = _frame(seed=2)
    rgb = np.repeat(f[:, :, None], 3, axis=2)
    np.testing.assert_allclose(refiner.encode(f), refiner.encode(rgb), atol=1e-5)


def test_single_click_picks_highest_predicted_iou(refiner):
    f = _frame(seed=3)
    clicks = Prompts(clicks=as_clicks([(45, 75, True)]))
    pred = refiner.predict(f, None, clicks)
    assert pred is not None and pred.multimask
    assert pred.logits.shape == f.shape and pred.mask.dtype == bool
    # the three candidates, straight from the decoder
    emb = torch.from_numpy(np.array(refiner.embedding(f)))[None]
    nh, nw = refiner.input_size(*f.shape)
    pts = refiner._points(clicks, *f.shape, nh, nw)
    sparse, dense = refiner.model.prompt_encoder(points=pts, boxes=None, masks=None)
    with torch.inference_mode():
        low, iou = refiner.model.mask_decoder(emb, refiner.model.prompt_encoder.get_dense_pe(), sparse, dense, True)
    assert low.shape[1] == 3
    best = int(iou[0].argmax())
    np.testing.assert_allclose(pred.low_res, low[0, best].numpy(), atol=1e-4)
    assert pred.iou == pytest.approx(float(iou[0].max()), abs=1e-5)


@pytest.mark.parametrize("kind", ["sam", "mobilesam"])
def test_bf16_decoder_agrees_with_float32(kind):
    torch.manual_seed(0)
    model = small_sam() if kind == "sam" else small_mobile_sam()
    exact = SamRefiner(model, name=kind, decoder_bf16=False)
    fast = SamRefiner(model, name=kind, decoder_bf16=True)
    assert fast._decoder is not model.mask_decoder and next(fast._decoder.parameters()).dtype == torch.bfloat16
    assert next(model.mask_decoder.parameters()).dtype == torch.float32  # the shared model is untouched
    f = _frame(seed=7)
    prior = np.zeros(f.shape, bool)
    prior[20:70, 40:110] = True
    for prompts, p in [
        (Prompts(clicks=as_clicks([(45, 75, True)])), None),
        (Prompts(clicks=as_clicks([(45, 75, True), (5, 5, False)])), prior),
        (Prompts(box=(20, 35, 70, 115)), None),
    ]:
        a = exact.predict(f, p, prompts)
        b = fast.predict(f, p, prompts)
        assert a is not None and b is not None and a.multimask == b.multimask
        assert b.logits.dtype == np.float32
        scale = float(np.abs(a.logits).max())
        assert np.abs(a.logits - b.logits).max() <= 0.05 * scale + 1e-3
        assert b.iou == pytest.approx(a.iou, abs=0.05)


def test_fp32_decoder_by_environment(monkeypatch):
    monkeypatch.setenv("TNSEG_SAM_DECODER_FP32", "1")
    model = small_mobile_sam()
    r = SamRefiner(model, name="mobilesam")
    assert not r.decoder_bf16 and r._decoder is model.mask_decoder


def test_several_prompts_use_single_output(refiner):
    f = _frame(seed=4)
    pred = refiner.predict(f, None, Prompts(clicks=as_clicks([(45, 75, True), (5, 5, False)])))
    assert pred is not None and not pred.multimask
    box_only = refiner.predict(f, None, Prompts(box=(20, 35, 70, 115)))
    assert box_only is not None and not box_only.multimask and box_only.logits.shape == f.shape


def test_mask_prompt_changes_the_answer(refiner):
    f = _frame(seed=5)
    clicks = Prompts(clicks=as_clicks([(45, 75, True)]))
    prior = np.zeros(f.shape, bool)
    prior[10:40, 10:60] = True
    a = refiner.predict(f, None, clicks, multimask=False)
    b = refiner.predict(f, prior, clicks, multimask=False)
    assert a is not None and b is not None
    assert np.abs(a.logits - b.logits).max() > 1e-3


def test_prior_to_low_res_grid(refiner):
    h, w = 90, 150
    nh, nw = refiner.input_size(h, w)
    grid = refiner.prior_to_low_res(np.ones((h, w), bool), nh, nw)
    m = refiner.mask_size
    assert grid.shape == m
    th = round(nh * m[0] / refiner.img_size)
    np.testing.assert_allclose(grid[:th], PRIOR_LOGIT, atol=1e-4)  # the frame area
    np.testing.assert_allclose(grid[th:], -PRIOR_LOGIT)  # the square padding below a wide frame


def test_own_previous_output_feeds_back_its_logits(refiner):
    f = _frame(seed=6)
    first = refiner.predict(f, None, Prompts(clicks=as_clicks([(45, 75, True)])))
    assert first is not None
    nh, nw = refiner.input_size(*f.shape)
    from tnseg_desktop.engine.embedding_cache import frame_digest

    fed = refiner._mask_input(first.mask, frame_digest(f), nh, nw)
    if first.mask.any():
        np.testing.assert_array_equal(fed, first.low_res)
    other = np.zeros(f.shape, bool)
    other[:5, :5] = True
    fed_other = refiner._mask_input(other, frame_digest(f), nh, nw)
    assert fed_other is not None and set(np.unique(np.round(fed_other))) <= set(np.arange(-8, 9))


def test_no_prompt_keeps_prior(refiner):
    f = _frame(seed=7)
    prior = np.zeros(f.shape, bool)
    prior[3:9, 4:12] = True
    np.testing.assert_array_equal(refiner.refine(f, prior, Prompts()), prior)
    assert not refiner.refine(f, None, Prompts()).any()


def test_rgb_frame_and_odd_sizes(refiner):
    rng = np.random.default_rng(8)
    f = rng.integers(0, 255, (131, 77, 3), dtype=np.uint8)
    m = refiner.refine(f, None, Prompts(clicks=as_clicks([(60, 30, True)]), box=(40, 10, 100, 70)))
    assert m.shape == (131, 77) and m.dtype == bool


def test_no_weights_installed():
    assert available_sam_refiners() == []
    with pytest.raises(UserFacingError, match="mobile_sam.pt"):
        make_sam_refiner("mobilesam")


def test_user_checkpoint_loads_through_safe_loader():
    from tnseg_desktop.file_hash import sha256_of
    from tnseg_desktop.model.sam_adapter import build_mobile_sam
    from tnseg_desktop.paths import user_models_dir

    torch.manual_seed(11)
    source = build_mobile_sam()
    path = user_models_dir() / "mobile_sam.pt"
    torch.save(source.state_dict(), path)
    assert available_sam_refiners() == ["mobilesam"]
    r = make_sam_refiner("mobilesam")
    assert r.model_id == sha256_of(path)
    for (k, a), b in zip(source.state_dict().items(), r.model.state_dict().values()):
        assert torch.equal(a, b), k


def test_wrong_checkpoint_is_one_sentence_error():
    from tnseg_desktop.model.sam_adapter import SamCheckpointMismatch
    from tnseg_desktop.paths import user_models_dir

    path = user_models_dir() / "mobile_sam.pt"
    torch.save(small_mobile_sam().state_dict(), path)
    with pytest.raises(SamCheckpointMismatch) as exc:
        make_sam_refiner("mobilesam")
    assert "\n" not in exc.value.one_line()


def test_upsampling_matches_sam_postprocess(refiner):
    rng = np.random.default_rng(9)
    m = refiner.mask_size
    low = rng.normal(size=m).astype(np.float32)
    h, w = 90, 150
    nh, nw = refiner.input_size(h, w)
    ref = refiner.model.postprocess_masks(torch.from_numpy(low)[None, None], (nh, nw), (h, w))[0, 0].numpy()
    np.testing.assert_allclose(refiner.upsample(low, nh, nw, h, w), ref, atol=1e-3)
