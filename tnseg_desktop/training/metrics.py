"""The one definition of the segmentation metrics (DESIGN.md section 6).

Dice and IoU of the foreground per image; an empty prediction on an empty
mask counts 1. Means are over images.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np


def _as_bool(a: np.ndarray) -> np.ndarray:
    return a if a.dtype == bool else a > 0


def dice(pred: np.ndarray, gt: np.ndarray) -> float:
    p, g = _as_bool(pred), _as_bool(gt)
    if p.shape != g.shape:
        raise ValueError(f"prediction shape {p.shape} differs from mask shape {g.shape}")
    denom = int(p.sum()) + int(g.sum())
    if denom == 0:
        return 1.0
    return 2.0 * int(np.logical_and(p, g).sum()) / denom


def iou(pred: np.ndarray, gt: np.ndarray) -> float:
    p, g = _as_bool(pred), _as_bool(gt)
    if p.shape != g.shape:
        raise ValueError(f"prediction shape {p.shape} differs from mask shape {g.shape}")
    union = int(np.logical_or(p, g).sum())
    if union == 0:
        return 1.0
    return int(np.logical_and(p, g).sum()) / union


def dice_fg_bg_mean(pred: np.ndarray, gt: np.ndarray) -> float:
    """CLIP-TNseg's own convention (mean of background and foreground Dice); reported only as an extra field."""
    p, g = _as_bool(pred), _as_bool(gt)
    return 0.5 * (dice(p, g) + dice(~p, ~g))


def summarise(per_image: Iterable[dict]) -> dict:
    rows = list(per_image)
    n = len(rows)
    if n == 0:
        return {"n": 0, "dice_mean": None, "iou_mean": None}
    d = np.array([r["dice"] for r in rows], dtype=float)
    i = np.array([r["iou"] for r in rows], dtype=float)
    out = {
        "n": n,
        "dice_mean": float(d.mean()),
        "iou_mean": float(i.mean()),
        "dice_median": float(np.median(d)),
        "dice_std": float(d.std()),
    }
    if all("dice_fg_bg" in r for r in rows):
        out["dice_fg_bg_mean"] = float(np.mean([r["dice_fg_bg"] for r in rows]))
    return out
