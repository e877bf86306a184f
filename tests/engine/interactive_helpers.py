"""Shared pieces for the editing-session tests: real DDTI frames and a tiny trained tnseg-lite."""

from __future__ import annotations

import time
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from tnseg_desktop.engine.refiner_base import Prompts
from tnseg_desktop.model.lite import TnsegLite
from tnseg_desktop.training.data import Sample, load_folder


class FrameList:
    """The smallest frame source: ``len`` and ``frame(i)`` over a list."""

    def __init__(self, frames: list[np.ndarray]) -> None:
        self.frames = frames
        self.decoded: list[int] = []

    def __len__(self) -> int:
        return len(self.frames)

    def frame(self, index: int) -> np.ndarray:
        self.decoded.append(index)
        return self.frames[index]


@lru_cache(maxsize=4)
def ddti_samples(data_root: Path, split: str = "val", count: int = 6) -> tuple[Sample, ...]:
    """The first ``count`` samples of a DDTI split whose nodule is neither tiny nor huge."""
    out = []
    for s in load_folder(data_root / "ddti" / split):
        frac = s.mask.mean()
        if 0.02 < frac < 0.3:
            out.append(s)
        if len(out) == count:
            break
    return tuple(out)


def random_lite(seed: int = 0, size: int = 64) -> TnsegLite:
    torch.manual_seed(seed)
    return TnsegLite(base_channels=8, head_hidden=16, input_size=size).eval()


_TRAINED: dict[str, TnsegLite] = {}


def tiny_trained_lite(data_root: Path, steps: int = 120) -> TnsegLite:
    """A tiny tnseg-lite trained a few steps on 8 DDTI training frames (cached per test run)."""
    key = f"{data_root}:{steps}"
    if key not in _TRAINED:
        from tnseg_desktop.training.trainer import LiteTrainer, TrainConfig

        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # oversubscribed shared CPUs make several threads far slower
        train = list(ddti_samples(data_root, "train", 8))
        cfg = TrainConfig(size=64, batch=8, steps=steps, warmup=10, lr=3e-3, base_channels=8, head_hidden=16, val_every=10**9, p_auto=0.3, aug_strength=0.3, max_click_rounds=1)
        t0 = time.time()
        trainer = LiteTrainer(cfg, train, device="cpu")
        try:
            trainer.run()
        finally:
            torch.set_num_threads(threads)
        trainer.model.train_seconds = time.time() - t0  # type: ignore[attr-defined]
        _TRAINED[key] = trainer.model.eval()
    return _TRAINED[key]


class OracleRefiner:
    """Fixes exactly the error region under the latest click (connected error component), nothing else."""

    name = "oracle"
    needs_embedding = False

    def __init__(self, gt: np.ndarray) -> None:
        self.gt = gt.astype(bool)
        self.calls = 0

    def prepare(self, frame: np.ndarray) -> None:
        return None

    def is_prepared(self, frame: np.ndarray) -> bool:
        return True

    def invalidate(self) -> None:
        return None

    def refine(self, frame: np.ndarray, prior: np.ndarray | None, prompts: Prompts) -> np.ndarray:
        import cv2

        self.calls += 1
        pred = np.zeros_like(self.gt) if prior is None else prior.astype(bool).copy()
        click = prompts.clicks[-1]
        error = pred ^ self.gt
        _, labels = cv2.connectedComponents(error.astype(np.uint8), connectivity=8)
        k = labels[click.row, click.col]
        if k > 0:
            region = labels == k
            pred[region] = self.gt[region]
        return pred


class StuckRefiner(OracleRefiner):
    """Never changes the mask."""

    name = "stuck"

    def refine(self, frame: np.ndarray, prior: np.ndarray | None, prompts: Prompts) -> np.ndarray:
        self.calls += 1
        return np.zeros_like(self.gt) if prior is None else prior.astype(bool).copy()


class DiscRefiner(OracleRefiner):
    """Deterministic and cheap: prior, plus a disc per positive click, minus a disc per negative one.

    Inside a box, the result is also limited to the box. Records every call.
    """

    name = "disc"

    def __init__(self, radius: int = 6) -> None:
        self.radius = radius
        self.calls = 0
        self.seen: list[tuple[np.ndarray | None, Prompts]] = []

    def refine(self, frame: np.ndarray, prior: np.ndarray | None, prompts: Prompts) -> np.ndarray:
        from tnseg_desktop.engine import mask_ops

        self.calls += 1
        self.seen.append((None if prior is None else prior.copy(), prompts))
        out = np.zeros(frame.shape[:2], dtype=bool) if prior is None else prior.astype(bool).copy()
        for c in prompts.clicks:
            out = mask_ops.paint(out, [(c.row, c.col)], self.radius) if c.positive else mask_ops.erase(out, [(c.row, c.col)], self.radius)
        if prompts.box is not None:
            r0, c0, r1, c1 = prompts.box
            inside = np.zeros_like(out)
            inside[r0:r1, c0:c1] = True
            out &= inside
        return out


class FixedAuto:
    """An automatic segmenter that answers each known frame (by identity) with its given mask."""

    def __init__(self, frames: list[np.ndarray], masks: list[np.ndarray]) -> None:
        self.by_frame = {id(f): m for f, m in zip(frames, masks)}
        self.calls = 0

    def auto_probs(self, frames):
        self.calls += 1
        return [self.by_frame[id(f)].astype(np.float32) * 0.9 for f in frames]
