"""Text prompts: probability map -> SAM prompts -> mask, with a tiny random text-conditioned network."""

from __future__ import annotations

import numpy as np
import pytest

from tnseg_desktop.engine.refiner_base import Prompts
from tnseg_desktop.engine.sam_refiner import SamRefiner
from tnseg_desktop.engine.text_prompt import (
    CLIP_MISSING,
    ClipWeightsMissing,
    NothingFound,
    load_phrases,
    prompts_from_prob_map,
    suggest,
    text_to_mask,
)
from sam_small import small_sam
from tiny_text_seg import TinyTextSeg


def _frame() -> np.ndarray:
    rng = np.random.default_rng(0)
    f = rng.integers(10, 50, (96, 128), dtype=np.uint8)
    yy, xx = np.mgrid[:96, :128]
    f[(yy - 40) ** 2 + (xx - 50) ** 2 < 20**2] = 210  # the "nodule"
    f[(yy - 80) ** 2 + (xx - 110) ** 2 < 6**2] = 200  # a smaller bright spot
    return f


@pytest.fixture(scope="module")
def sam() -> SamRefiner:
    return SamRefiner(small_sam(), name="sam")


def test_prompts_from_a_two_blob_map():
    yy, xx = np.mgrid[:100, :140]
    prob = 0.9 * np.exp(-((yy - 30) ** 2 + (xx - 40) ** 2) / (2 * 12**2)) + 0.8 * np.exp(-((yy - 75) ** 2 + (xx - 115) ** 2) / (2 * 6**2))
    p = prompts_from_prob_map(prob.astype(np.float32), threshold=0.5)
    assert p is not None
    r0, c0, r1, c1 = p.box
    assert r0 <= 30 < r1 and c0 <= 40 < c1 and not (r0 <= 75 < r1 and c0 <= 115 < c1)
    pos = [c for c in p.clicks if c.positive]
    neg = [c for c in p.clicks if not c.positive]
    assert pos and all(p.component[c.row, c.col] for c in pos)
    assert (pos[0].row, pos[0].col) == (30, 40)  # the map's peak
    assert [(c.row, c.col) for c in neg] == [(75, 115)]


def test_nothing_above_threshold():
    assert prompts_from_prob_map(np.full((20, 20), 0.2, np.float32)) is None


def test_text_through_sam(sam):
    frame = _frame()
    clip = TinyTextSeg()
    prob = clip.prob_map(frame, "thyroid nodule")
    assert 0.01 < (prob >= 0.5).mean() < 0.5  # the stand-in's map has structure
    mask = text_to_mask(frame, "thyroid nodule", None, sam, clip)
    assert mask.shape == frame.shape and mask.dtype == bool and mask.any()
    p = prompts_from_prob_map(prob)
    direct = sam.refine(frame, None, Prompts(clicks=p.clicks, box=p.box))
    np.testing.assert_array_equal(mask, direct if direct.any() else p.component)


def test_text_without_sam_thresholds_the_map():
    frame = _frame()
    clip = TinyTextSeg()
    mask = text_to_mask(frame, "  cystic   nodule ", None, None, clip)
    np.testing.assert_array_equal(mask, clip.prob_map(frame, "cystic nodule") >= 0.5)


def test_a_refiner_trained_on_other_targets_leaves_the_map_as_it_is(sam):
    class Targeted(TinyTextSeg):
        def target_of(self, text: str) -> str:
            return "gland" if "gland" in text else "nodule"

    class NoduleRefiner:
        text_targets = ("nodule",)

        def __init__(self) -> None:
            self.calls = 0

        def refine(self, frame, prior, prompts):
            self.calls += 1
            return sam.refine(frame, prior, prompts)

    frame, clip, refiner = _frame(), Targeted(), NoduleRefiner()
    gland = text_to_mask(frame, "thyroid gland", None, refiner, clip)
    np.testing.assert_array_equal(gland, clip.prob_map(frame, "thyroid gland") >= 0.5)
    assert refiner.calls == 0
    text_to_mask(frame, "thyroid nodule", None, refiner, clip)
    assert refiner.calls == 1


def test_map_at_another_resolution_is_resized(sam):
    class HalfRes:
        def prob_map(self, frame, text):
            return TinyTextSeg().prob_map(frame[::2, ::2].copy(), text)

    mask = text_to_mask(_frame(), "nodule", None, None, HalfRes())
    assert mask.shape == _frame().shape


def test_missing_clip_is_one_sentence(sam):
    with pytest.raises(ClipWeightsMissing) as exc:
        text_to_mask(_frame(), "nodule", None, sam, None)
    assert str(exc.value) == CLIP_MISSING == exc.value.one_line()
    assert CLIP_MISSING.count(".") == 1 and CLIP_MISSING.endswith(".")


def test_nothing_found_and_empty_phrase(sam):
    with pytest.raises(NothingFound):
        text_to_mask(_frame(), "nodule", None, sam, TinyTextSeg(), threshold=1.01)
    with pytest.raises(Exception, match="phrase"):
        text_to_mask(_frame(), "   ", None, sam, TinyTextSeg())


def test_phrase_list_and_suggestions():
    phrases = load_phrases()
    for p in ("nodule", "thyroid nodule", "cystic nodule", "solid hypoechoic nodule", "calcified nodule", "spongiform nodule", "thyroid gland"):
        assert p in phrases
    assert suggest("cyst")[0] == "cystic nodule"
    assert "solid hypoechoic nodule" in suggest("hypoechoic")
    assert suggest("") == phrases[:8]
