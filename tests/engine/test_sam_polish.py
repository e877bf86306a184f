"""The automatic mask outlined by LiteMedSAM from its largest piece's box (real weights, real ddti/val frames)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tnseg_desktop.engine.embedding_cache import EmbeddingCache
from tnseg_desktop.engine.litemedsam_refiner import make_litemedsam_refiner
from tnseg_desktop.engine.refiner_base import Prompts
from tnseg_desktop.engine.sam_polish import SamPolished, polished_if_default, probs_for_range_check
from tnseg_desktop.model import litemedsam as lms
from tnseg_desktop.training.data import read_gray
from tnseg_desktop.training.metrics import dice


class FixedMap:
    """An automatic segmenter that answers one given map (what the polish starts from, chosen by the test)."""

    name = "fixed"

    def __init__(self, prob: np.ndarray) -> None:
        self.prob = prob

    def auto_probs(self, frames):
        return [self.prob.copy() for _ in frames]


@pytest.fixture(scope="module")
def sam():
    torch.set_num_threads(1)
    return make_litemedsam_refiner(lms.LITEMEDSAM_THYROID, cache=EmbeddingCache(max_bytes=256 * 1024**2))


@pytest.fixture(scope="module")
def frame(shared_data):
    path = sorted((shared_data / "ddti" / "val" / "images").glob("*.png"))[11]
    return read_gray(path), read_gray(shared_data / "ddti" / "val" / "masks" / path.name) > 127


def _rough_map(truth: np.ndarray) -> np.ndarray:
    """The truth's bounding box filled at 0.7: finds the nodule, outlines it badly; plus a small far speck."""
    prob = np.zeros(truth.shape, np.float32)
    rows, cols = np.nonzero(truth)
    prob[rows.min():rows.max() + 1, cols.min():cols.max() + 1] = 0.7
    prob[:6, :6] = 0.9
    return prob


def test_the_polished_mask_is_the_box_tools_answer_to_the_largest_pieces_box(sam, frame):
    image, truth = frame
    rough = _rough_map(truth)
    polished = SamPolished(FixedMap(rough), sam).auto_probs([image])[0]
    assert polished.shape == image.shape and polished.dtype == np.float32
    rows, cols = np.nonzero(truth)
    h, w = rows.max() + 1 - rows.min(), cols.max() + 1 - cols.min()
    m_r, m_c = round(h * 0.05), round(w * 0.05)
    box = (max(0, rows.min() - m_r), max(0, cols.min() - m_c), min(image.shape[0], rows.max() + 1 + m_r), min(image.shape[1], cols.max() + 1 + m_c))
    direct = sam.predict(image, None, Prompts(box=box), multimask=False).mask
    assert np.array_equal(polished >= 0.5, direct)  # the speck is not what is boxed
    assert dice(polished >= 0.5, truth) > dice(rough >= 0.5, truth) + 0.03  # 0.909 against the box's 0.863


def test_a_map_with_nothing_in_it_is_left_as_it_is(sam, frame):
    image, _ = frame
    empty = np.full(image.shape, 0.2, np.float32)
    out = SamPolished(FixedMap(empty), sam).auto_probs([image])[0]
    assert np.array_equal(out, empty)


def test_the_range_check_reads_the_unpolished_map(sam, frame):
    image, truth = frame
    rough = _rough_map(truth)
    polished = SamPolished(FixedMap(rough), sam)
    assert np.array_equal(probs_for_range_check(polished, [image])[0], rough)
    assert np.array_equal(probs_for_range_check(FixedMap(rough), [image])[0], rough)
    assert not np.array_equal(polished.auto_probs([image])[0], rough)


def test_only_the_default_pair_without_text_is_polished(sam, frame):
    seg = FixedMap(np.zeros((4, 4), np.float32))
    assert polished_if_default(seg, "tnseg-lite", "cpu") is seg
    assert polished_if_default(seg, "tnseg-med+lite", "cpu", prompt="thyroid nodule") is seg
    wrapped = polished_if_default(seg, "tnseg-med+lite", "cpu", refiner=sam)
    assert isinstance(wrapped, SamPolished) and wrapped.inner is seg and wrapped.sam is sam and wrapped.name == "fixed"
