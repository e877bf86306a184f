"""tnseg-med's training on cached views: partial labels per target, the gland-covers-the-nodule loss, and the
shipped weights on real ddti/val frames with the real LiteMedSAM encoder (a regression guard)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tnseg_desktop.model.tnseg_med import TnsegMed
from tnseg_desktop.training.tnseg_med_train import MedTrainConfig, MedViews, predict_logits, train_med

SMALL = {"reduce_dim": 8, "cond_dim": 16, "coarse_blocks": 0, "base_channels": 4, "head_hidden": 8, "work_size": 64}


def _disc(rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[:256, :256]
    cy, cx, r = rng.integers(80, 176), rng.integers(80, 176), rng.integers(25, 50)
    return (yy - cy) ** 2 + (xx - cx) ** 2 < r * r


def _views(n: int, target: str, seed: int) -> MedViews:
    """Views whose mask is a disc the embedding encodes, so it can be learnt: a nodule bright in channel 0, a
    gland in channel 1. A gland view also holds a channel-0 disc outside its label, so that nothing but the
    containment loss tells the gland target to cover channel-0 discs."""
    rng = np.random.default_rng(seed)
    emb = rng.normal(0, 0.1, (n, 256, 64, 64)).astype(np.float16)
    masks = np.zeros((n, 1, 256, 256), bool)
    for k in range(n):
        masks[k, 0] = _disc(rng)
        emb[k, 0 if target == "nodule" else 1] += masks[k, 0, ::4, ::4].astype(np.float16) * 2
        if target == "gland":
            emb[k, 0] += _disc(rng)[::4, ::4].astype(np.float16) * 2
    images = rng.integers(0, 255, (n, 1, 256, 256), dtype=np.uint8)
    return MedViews(torch.from_numpy(emb), torch.from_numpy(images), torch.from_numpy(masks), [(256, 256)] * n, [target] * n)


def _cond_fn():
    g = torch.Generator().manual_seed(3)
    vectors = {"nodule": torch.randn(16, generator=g), "gland": torch.randn(16, generator=g)}
    return lambda targets, rng: torch.stack([vectors[t] for t in targets])


def _gland_inside_nodules(net: TnsegMed, views: MedViews, cond_fn) -> float:
    emb, img, mask, _ = views.batch(list(range(len(views))))
    prob = torch.sigmoid(predict_logits(net, emb, img, cond_fn(["gland"] * len(views), None), bf16=False))
    return float((prob * mask).sum() / mask.sum())


@pytest.mark.parametrize("contain", [0, 4])
def test_training_lowers_the_loss(contain):
    torch.manual_seed(0)
    nodules = _views(8, "nodule", 0)
    losses = []
    train_med(TnsegMed(SMALL), nodules, None, MedTrainConfig(steps=30, batch=4, bf16=False, contain=contain, net=SMALL),
              cond_fn=_cond_fn(), progress=lambda r: losses.append(r["loss"]))
    assert np.mean(losses[-10:]) < np.mean(losses[:5])


def test_the_gland_target_learns_to_cover_nodules_only_with_the_containment_loss():
    """DDTI frames say nothing about the gland, except that their nodule lies in it: with ``contain`` the gland
    target is asked to cover nodule pixels, without it the nodule frames never teach the gland."""
    nodules = _views(10, "nodule", 0)
    glands = _views(10, "gland", 1)
    train = MedViews.concat([nodules, glands])
    held = _views(6, "nodule", 2)
    cond = _cond_fn()
    scores = {}
    for contain in (0, 4):
        torch.manual_seed(0)
        cfg = MedTrainConfig(steps=50, batch=6, lr=3e-3, bf16=False, contain=contain, contain_weight=1.0, net=SMALL, seed=0)
        ema, _ = train_med(TnsegMed(SMALL), train, None, cfg, cond_fn=cond)
        scores[contain] = _gland_inside_nodules(ema, held, cond)
    assert scores[4] > scores[0] + 0.05, scores


def test_the_shipped_weights_on_real_ddti_frames(shared_data):
    """Regression guard: the shipped tnseg-med with the real encoder on 8 ddti/val frames."""
    from tnseg_desktop.model.resolve import load_tnseg_med_segmenter
    from tnseg_desktop.training.data import load_folder
    from tnseg_desktop.training.metrics import dice

    torch.set_num_threads(1)
    samples = load_folder(shared_data / "ddti" / "val")[::12]
    med = load_tnseg_med_segmenter("tnseg-med", torch.device("cpu"))
    probs = med.auto_probs([s.image for s in samples])
    assert all(p.shape == s.image.shape for p, s in zip(probs, samples))
    scores = [dice(p >= 0.5, s.mask) for p, s in zip(probs, samples)]
    assert np.mean(scores) >= 0.65, scores
