"""Interactive evaluation with simulated clicks (DESIGN.md section 6).

Per image: start from an empty mask or the automatic one, then repeatedly
place ``next_click(pred, gt)`` and refine with all clicks so far, recording
IoU and Dice after each click. NoC@t is the number of clicks until IoU >= t
(0 when the start already reaches it), counted as ``max_clicks`` when never
reached.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import numpy as np

from tnseg_desktop.engine.refiner_base import Prompts, Refiner
from tnseg_desktop.prompts import Box, Click
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


BOX_CLICKS = 2  # a box counts as two clicks (its two corners), DESIGN.md section 6
BOX_JITTER = 0.10


def jittered_box(gt: np.ndarray, sample_id: str, amount: float = BOX_JITTER, seed: int = 0) -> Box | None:
    """The true mask's bounding box, each side moved by a seeded random amount up to ±``amount`` of the box's size."""
    rows, cols = np.nonzero(gt)
    if rows.size == 0:
        return None
    r0, r1, c0, c1 = int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1
    h, w = gt.shape[:2]
    digest = hashlib.sha1(f"{seed}|{sample_id}".encode()).digest()
    d = np.random.default_rng(int.from_bytes(digest[:8], "little")).uniform(-amount, amount, size=4)
    bh, bw = r1 - r0, c1 - c0
    nr0 = int(np.clip(round(r0 + d[0] * bh), 0, h - 1))
    nc0 = int(np.clip(round(c0 + d[1] * bw), 0, w - 1))
    nr1 = int(np.clip(round(r1 + d[2] * bh), nr0 + 1, h))
    nc1 = int(np.clip(round(c1 + d[3] * bw), nc0 + 1, w))
    return (nr0, nc0, nr1, nc1)


def simulate_clicks(refiner: Refiner, image: np.ndarray, gt: np.ndarray, start: np.ndarray | None, max_clicks: int, sample_id: str = "", box: Box | None = None) -> ClickTrace:
    """Click, refine, measure, ``max_clicks`` times (fewer refinements once the mask is exact).

    With ``box`` the first interaction is that box (counted as ``BOX_CLICKS``
    clicks: the entries for 1 and 2 clicks both hold the box's result), and
    every later refinement keeps it among the prompts.
    """
    gt = gt.astype(bool)
    pred = np.zeros_like(gt) if start is None else start.astype(bool)
    ious, dices = [iou(pred, gt)], [dice(pred, gt)]
    clicks: list[Click] = []
    times: list[float] = []
    budget = max_clicks
    if box is not None:
        t0 = time.perf_counter()
        pred = refiner.refine(image, None, Prompts(box=box)).astype(bool)
        times.append((time.perf_counter() - t0) * 1000.0)
        for _ in range(min(BOX_CLICKS, max_clicks)):
            ious.append(iou(pred, gt))
            dices.append(dice(pred, gt))
        budget = max(0, max_clicks - BOX_CLICKS)
    for _ in range(budget):
        click = next_click(pred, gt)
        if click is not None:
            clicks.append(click)
            t0 = time.perf_counter()
            pred = refiner.refine(image, pred, Prompts(clicks=list(clicks), box=box)).astype(bool)
            times.append((time.perf_counter() - t0) * 1000.0)
        # with no error left there is nothing to click: the mask stays as it is
        ious.append(iou(pred, gt))
        dices.append(dice(pred, gt))
    return ClickTrace(sample_id, ious, dices, clicks, times)


START_KINDS = ("empty", "auto", "box")


def start_masks(samples: Sequence[Sample], start: str, auto_probs: Callable[[Sequence[np.ndarray]], list[np.ndarray]] | None, threshold: float = 0.5, batch_size: int = 8) -> list[np.ndarray | None]:
    if start in ("empty", "box"):
        return [None] * len(samples)
    if start != "auto":
        raise ValueError(f"start must be one of {', '.join(START_KINDS)}, not {start!r}")
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
        box = jittered_box(s.mask, s.id) if start == "box" else None
        traces.append(simulate_clicks(refiner, s.image, s.mask, m, max_clicks, s.id, box=box))
        if progress is not None:
            progress(i + 1, len(samples))
    out = summarise_traces(traces, max_clicks)
    out["start"] = start
    if start == "box" and traces:
        out["dice_after_box"] = float(np.mean([t.dices[min(BOX_CLICKS, len(t.dices) - 1)] for t in traces]))
        out["box_jitter"] = BOX_JITTER
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
