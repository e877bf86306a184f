"""Is this frame like the ones the model learnt from? The one rule, from the model's own output.

On its training frames the shipped tnseg-lite is confident inside its mask,
has a thin uncertain rim, covers a modest share of the frame and keeps away
from the edge of the scanned field. On a frame unlike them (a cardiac echo, a
breast lesion, a sector scan) its mask is hesitant, frayed, huge or runs
along the black outside the field. Four statistics of the probability map
(and the frame) measure this, and a frame is out of range when any lies beyond the range of all the
training frames (their minimum or maximum, written once per model to
``models/<model>.range.json`` by ``bench/make_model_range.py``; the file holds
the exact command). Such a mask is still shown, with a sentence saying it may
not be a nodule.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from tnseg_desktop.paths import shipped_models_dir
from tnseg_desktop.prompts import to_gray

UNCERTAIN = (0.1, 0.9)  # a pixel whose probability lies in between is one the model hesitates on
STATISTICS = ("mask_confidence", "uncertain_ratio", "area_share", "edge_contact")
NO_SIGNAL = 10  # grey levels below this are the black outside the scanned field


@dataclass(frozen=True)
class FrameStatistics:
    mask_confidence: float  # mean probability inside the mask (p >= 0.5)
    uncertain_ratio: float  # pixels with 0.1 < p < 0.9, per mask pixel
    area_share: float  # mask pixels per frame pixel
    edge_contact: float  # share of the mask's outline on the frame border or next to no-signal black

    def as_dict(self) -> dict[str, float]:
        return {k: float(getattr(self, k)) for k in STATISTICS}


def frame_statistics(prob: np.ndarray, frame: np.ndarray, threshold: float = 0.5) -> FrameStatistics | None:
    """The statistics of one probability map on its frame; None when the mask is empty (nothing is presented)."""
    p = np.asarray(prob, dtype=np.float32)
    mask = p >= threshold
    n = int(mask.sum())
    if n == 0:
        return None
    uncertain = int(((p > UNCERTAIN[0]) & (p < UNCERTAIN[1])).sum())
    m = mask.astype(np.uint8)
    outline = m - cv2.erode(m, np.ones((3, 3), np.uint8))
    outside = cv2.dilate((to_gray(np.asarray(frame)) < NO_SIGNAL).astype(np.uint8), np.ones((7, 7), np.uint8))
    outside[:3], outside[-3:], outside[:, :3], outside[:, -3:] = 1, 1, 1, 1
    edge = float((outline & outside).sum()) / max(1, int(outline.sum()))
    return FrameStatistics(float(p[mask].mean()), uncertain / n, n / p.size, edge)


@dataclass(frozen=True)
class ModelRange:
    """The range of the statistics over a model's training frames."""

    min_mask_confidence: float
    max_uncertain_ratio: float
    max_area_share: float
    max_edge_contact: float

    def reasons(self, s: FrameStatistics) -> list[str]:
        out = []
        if s.mask_confidence < self.min_mask_confidence:
            out.append("the model is far less sure of this mask than on any thyroid frame it learnt from")
        if s.uncertain_ratio > self.max_uncertain_ratio:
            out.append("its edge is far more uncertain than on the thyroid frames it learnt from")
        if s.area_share > self.max_area_share:
            out.append("it covers more of the frame than any nodule the model learnt from")
        if s.edge_contact > self.max_edge_contact:
            out.append("it runs along the edge of the scanned field, where no nodule it learnt from lay")
        return out

    def verdict(self, prob: np.ndarray, frame: np.ndarray) -> str | None:
        """None when the frame looks like the training frames (or the mask is empty); else one sentence."""
        s = frame_statistics(prob, frame)
        reasons = self.reasons(s) if s is not None else []
        if not reasons:
            return None
        return ("This frame does not look like the thyroid frames the model learnt from (" + "; ".join(reasons)
                + "): the mask may not be a nodule.")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ModelRange":
        b = data["bounds"]
        return cls(float(b["min_mask_confidence"]), float(b["max_uncertain_ratio"]), float(b["max_area_share"]),
                   float(b["max_edge_contact"]))


def range_path(model_name: str = "tnseg-lite") -> Path:
    return shipped_models_dir() / f"{model_name}.range.json"


def load_range(model_name: str = "tnseg-lite") -> ModelRange | None:
    """The shipped range of a model, None when it has none (then no frame is judged)."""
    path = range_path(model_name)
    try:
        return ModelRange.from_json(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def bounds_from_statistics(stats: Sequence[FrameStatistics], low_pct: float = 0.0, high_pct: float = 100.0) -> dict[str, float]:
    """The bounds of the statistics over ``stats``: by default beyond every training frame."""
    values = np.array([[getattr(s, k) for k in STATISTICS] for s in stats], dtype=np.float64)
    return {
        "min_mask_confidence": round(float(np.percentile(values[:, 0], low_pct)), 4),
        "max_uncertain_ratio": round(float(np.percentile(values[:, 1], high_pct)), 4),
        "max_area_share": round(float(np.percentile(values[:, 2], high_pct)), 4),
        "max_edge_contact": round(float(np.percentile(values[:, 3], high_pct)), 4),
    }
