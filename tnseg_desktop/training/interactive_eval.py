"""Interactive evaluation with simulated clicks (DESIGN.md section 6).

Per image: start from an empty mask or the automatic one, then repeatedly
place ``next_click(pred, gt)`` and refine with all clicks so far, recording
IoU and Dice after each click. NoC@t is the number of clicks until IoU >= t
(0 when the start already reaches it), counted as ``max_clicks`` when never
reached.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import numpy as np

from tnseg_desktop.engine.refiner_base import Prompts, Refiner
from tnseg_desktop.prompts import Click
from tnseg_desktop.training.clicks import next_click
from tnseg_desktop.training.data import Sample
from tnseg_desktop.training.metrics import dice, iou

NOC_THRESHOLDS = (0.85, 0.90)


@dataclass
class ClickTrace:
    """One image's run: metrics after 0, 1, ..., max_clicks clicks."""

    id: str
    ious: list[float]
    dices: list[float]
    clicks: list[Click]
    refine_ms: list[float]

    def noc(self, threshold: float, max_clicks: int) -> int:
        return clicks_to_reach(self.ious, threshold, max_clicks)


def clicks_to_reach(ious: Sequence[float], threshold: float, max_clicks: int) -> int:
    for k, value in enumerate(ious[: max_clicks + 1]):
        if value >= threshold:
            return k
    return max_clicks


def simulate_clicks(refiner: Refiner, image: np.ndarray, gt: np.ndarray, start: np.ndarray | None, max_clicks: int, sample_id: str = "") -> ClickTrace:
    """Click, refine, measure, ``max_clicks`` times (fewer refinements once the mask is exact)."""
    gt = gt.astype(bool)
    pred = np.zeros_like(gt) if start is None else start.astype(bool)
    ious, dices = [iou(pred, gt)], [dice(pred, gt)]
    clicks: list[Click] = []
    times: list[float] = []
    for _ in range(max_clicks):
        click = next_click(pred, gt)
        if click is not None:
            clicks.append(click)
            t0 = time.perf_counter()
            pred = refiner.refine(image, pred, Prompts(clicks=list(clicks))).astype(bool)
            times.append((time.perf_counter() - t0) * 1000.0)
        # with no error left there is nothing to click: the mask stays as it is
        ious.append(iou(pred, gt))
        dices.append(dice(pred, gt))
    return ClickTrace(sample_id, ious, dices, clicks, times)


def start_masks(samples: Sequence[Sample], start: str, auto_probs: Callable[[Sequence[np.ndarray]], list[np.ndarray]] | None, threshold: float = 0.5, batch_size: int = 8) -> list[np.ndarray | None]:
    if start == "empty":
        return [None] * len(samples)
    if start != "auto":
        raise ValueError(f"start must be 'empty' or 'auto', not {start!r}")
    if auto_probs is None:
        raise ValueError("starting from the automatic mask needs an automatic model")
    out: list[np.ndarray | None] = []
    for i in range(0, len(samples), batch_size):
        chunk = samples[i : i + batch_size]
        out.extend(p >= threshold for p in auto_probs([s.image for s in chunk]))
    return out


def summarise_traces(traces: Sequence[ClickTrace], max_clicks: int) -> dict:
    if not traces:
        return {"n": 0, "noc85": None, "noc90": None, "dice_at_clicks": [], "iou_at_clicks": []}
    dices = np.array([t.dices for t in traces], dtype=float)
    ious = np.array([t.ious for t in traces], dtype=float)
    all_ms = [ms for t in traces for ms in t.refine_ms]
    return {
        "n": len(traces),
        "max_clicks": max_clicks,
        "noc85": float(np.mean([t.noc(0.85, max_clicks) for t in traces])),
        "noc90": float(np.mean([t.noc(0.90, max_clicks) for t in traces])),
        # images that never reach the threshold within max_clicks
        "nof85": int(sum(max(t.ious) < 0.85 for t in traces)),
        "nof90": int(sum(max(t.ious) < 0.90 for t in traces)),
        "dice_at_clicks": [float(v) for v in dices.mean(axis=0)],
        "iou_at_clicks": [float(v) for v in ious.mean(axis=0)],
        "click_refine_ms_median": float(np.median(all_ms)) if all_ms else None,
    }


def evaluate_interactive(
    refiner: Refiner,
    samples: Sequence[Sample],
    start: str = "auto",
    auto_probs: Callable[[Sequence[np.ndarray]], list[np.ndarray]] | None = None,
    max_clicks: int = 20,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict:
    """Summary (``noc85``, ``noc90``, ``dice_at_clicks``, ``n``) plus ``per_image`` rows."""
    starts = start_masks(samples, start, auto_probs)
    traces: list[ClickTrace] = []
    for i, (s, m) in enumerate(zip(samples, starts)):
        if should_stop is not None and should_stop():
            break
        traces.append(simulate_clicks(refiner, s.image, s.mask, m, max_clicks, s.id))
        if progress is not None:
            progress(i + 1, len(samples))
    out = summarise_traces(traces, max_clicks)
    out["start"] = start
    out["per_image"] = [
        {
            "id": t.id,
            "noc85": t.noc(0.85, max_clicks),
            "noc90": t.noc(0.90, max_clicks),
            "iou_at_clicks": [round(v, 5) for v in t.ious],
            "dice_at_clicks": [round(v, 5) for v in t.dices],
            "clicks": [asdict(c) for c in t.clicks],
        }
        for t in traces
    ]
    return out
