"""One view of a side-by-side frame: masks and measurements never cross from one ultrasound region into another.

Many thyroid frames hold two views (transverse and longitudinal) next to each
other; the DICOM header says where each lies (SequenceOfUltrasoundRegions,
read by io/ into ``CineMeta.image_regions``). A mask is kept inside one view:
the view the user clicked in, else the view holding the largest part of the
mask. With two or more views the automatic mask is computed on each view's
crop (the shipped model learnt from single views) and the view with the
largest mask wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from tnseg_desktop.engine.refiner_base import Prompts

# (x0, y0, x1, y1), inclusive, frame pixels: the DICOM region bounds
Bounds = tuple[int, int, int, int]

# a region smaller than this share of the frame is a thumbnail or a marker, not a view
MIN_VIEW_SHARE = 0.04


@dataclass(frozen=True)
class Views:
    """The image regions of a frame of ``shape`` (rows, cols), clipped to it; empty when unknown."""

    shape: tuple[int, int]
    bounds: tuple[Bounds, ...]

    @property
    def split(self) -> bool:
        """True when the frame holds two or more views."""
        return len(self.bounds) >= 2

    def slices(self, i: int) -> tuple[slice, slice]:
        x0, y0, x1, y1 = self.bounds[i]
        return slice(y0, y1 + 1), slice(x0, x1 + 1)

    def region_mask(self, i: int) -> np.ndarray:
        out = np.zeros(self.shape, dtype=bool)
        out[self.slices(i)] = True
        return out

    def index_at(self, row: int, col: int) -> int | None:
        """The view holding pixel (row, col), or None when it lies outside every view."""
        for i, (x0, y0, x1, y1) in enumerate(self.bounds):
            if x0 <= col <= x1 and y0 <= row <= y1:
                return i
        return None

    def index_of_largest_part(self, mask: np.ndarray) -> int | None:
        """The view holding most of ``mask``'s pixels (None for an empty mask or no views)."""
        if not self.bounds:
            return None
        m = np.asarray(mask, dtype=bool)
        counts = [int(m[self.slices(i)].sum()) for i in range(len(self.bounds))]
        best = int(np.argmax(counts))
        return best if counts[best] > 0 else None

    def confine(self, mask: np.ndarray, view: int | None = None) -> np.ndarray:
        """``mask`` kept inside one view: ``view`` when given, else the view holding its largest part.

        Without views the mask comes back unchanged; with views, pixels outside
        every view (text, colour bars, the gap between views) are dropped too.
        """
        m = np.asarray(mask, dtype=bool)
        if not self.bounds or m.shape != self.shape:
            return m
        if view is None:
            view = self.index_of_largest_part(m)
        if view is None:
            return np.zeros_like(m)
        return m & self.region_mask(view)

    def confine_to_prompts(self, mask: np.ndarray, prompts: Prompts) -> np.ndarray:
        """Keep the view the user pointed at: the last positive click's, else the box centre's, else the largest part."""
        view = None
        positives = [c for c in prompts.clicks if c.positive]
        if positives:
            view = self.index_at(positives[-1].row, positives[-1].col)
        elif prompts.box is not None:
            r0, c0, r1, c1 = prompts.box
            view = self.index_at((r0 + r1) // 2, (c0 + c1) // 2)
        return self.confine(mask, view)


def views_of(meta: Any, shape: tuple[int, int] | None = None) -> Views:
    """The views of a cine from its metadata (``image_regions``; none for a plain image or no regions)."""
    rows, cols = shape if shape is not None else (int(meta.rows), int(meta.cols))
    return views_from_bounds(getattr(meta, "image_regions", None) or [], (rows, cols))


def views_from_bounds(bounds: Sequence[Sequence[int]], shape: tuple[int, int]) -> Views:
    """Views from region bounds: clipped to the frame, tiny and duplicate regions dropped, left to right."""
    rows, cols = int(shape[0]), int(shape[1])
    kept: list[Bounds] = []
    for b in bounds:
        x0, y0, x1, y1 = (int(v) for v in b)
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(cols - 1, x1), min(rows - 1, y1)
        if x1 < x0 or y1 < y0:
            continue
        if (x1 - x0 + 1) * (y1 - y0 + 1) < MIN_VIEW_SHARE * rows * cols:
            continue
        if (x0, y0, x1, y1) not in kept:
            kept.append((x0, y0, x1, y1))
    return Views((rows, cols), tuple(sorted(kept, key=lambda b: (b[0], b[1]))))


class ViewConfinedSegmenter:
    """An automatic segmenter that answers within one view of each frame.

    With two or more views each view's crop goes through the model and the
    view with the largest mask is kept; with one view the whole frame goes
    through and the mask is clipped to it.
    """

    def __init__(self, model: Any, views: Views, threshold: float = 0.5) -> None:
        self.model = model
        self.views = views
        self.threshold = float(threshold)

    def __getattr__(self, name: str) -> Any:
        # the wrapped model's other attributes (name, device, ...) stay reachable
        return getattr(self.model, name)

    def auto_probs(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        views = self.views
        frames = list(frames)
        if not views.bounds or any(np.asarray(f).shape[:2] != views.shape for f in frames):
            return list(self.model.auto_probs(frames))
        if not views.split:
            keep = views.region_mask(0)
            return [np.where(keep, p, 0.0).astype(np.float32) for p in self.model.auto_probs(frames)]
        n = len(views.bounds)
        crops = [np.ascontiguousarray(np.asarray(f)[views.slices(i)]) for f in frames for i in range(n)]
        crop_probs = self.model.auto_probs(crops)
        out = []
        for k in range(len(frames)):
            parts = crop_probs[k * n:(k + 1) * n]
            areas = [int((np.asarray(p) >= self.threshold).sum()) for p in parts]
            best = int(np.argmax(areas))
            full = np.zeros(views.shape, dtype=np.float32)
            full[views.slices(best)] = np.asarray(parts[best], dtype=np.float32)
            out.append(full)
        return out


class ViewConfinedRefiner:
    """A refiner whose masks stay in the view the user's prompts point at."""

    def __init__(self, refiner: Any, views: Views) -> None:
        self.refiner = refiner
        self.views = views

    def __getattr__(self, name: str) -> Any:
        return getattr(self.refiner, name)

    def refine(self, frame: np.ndarray, prior: np.ndarray | None, prompts: Prompts) -> np.ndarray:
        return self.views.confine_to_prompts(self.refiner.refine(frame, prior, prompts), prompts)


def confine_models(auto: Any, refiner: Any, views: Views) -> tuple[Any, Any]:
    """The session's models for a cine with these views (unchanged when it has none)."""
    if not views.bounds:
        return auto, refiner
    return (ViewConfinedSegmenter(auto, views) if auto is not None else None,
            ViewConfinedRefiner(refiner, views) if refiner is not None else None)
