"""Evaluating a predictor on samples with the project's metric definitions."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from tnseg_desktop.training.data import Sample
from tnseg_desktop.training.metrics import dice, dice_fg_bg_mean, iou, summarise

ProbFn = Callable[[Sequence[np.ndarray]], list[np.ndarray]]


def evaluate_probs(prob_fn: ProbFn, samples: Sequence[Sample], threshold: float = 0.5, batch_size: int = 8, should_stop: Callable[[], bool] | None = None) -> dict:
    """``prob_fn`` maps frames to probability maps at frame resolution."""
    rows = []
    for i in range(0, len(samples), batch_size):
        if should_stop is not None and should_stop():
            break
        chunk = samples[i : i + batch_size]
        probs = prob_fn([s.image for s in chunk])
        for s, p in zip(chunk, probs):
            pred = p >= threshold
            rows.append({"id": s.id, "dice": dice(pred, s.mask), "iou": iou(pred, s.mask), "dice_fg_bg": dice_fg_bg_mean(pred, s.mask)})
    out = summarise(rows)
    out["per_image"] = rows
    return out
