"""tnseg-lite as a refiner: the current mask and the clicks go in as its extra channels.

The network sees a zoomed-in crop around the object (prior, clicks and box,
enlarged by a margin, squared), so one click costs one small forward pass and
small nodules get the network's full input resolution. Outside the crop the
prior mask is kept.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from tnseg_desktop.engine import mask_ops
from tnseg_desktop.engine.refiner_base import Prompts
from tnseg_desktop.model.lite import TnsegLite
from tnseg_desktop.model.lite_predictor import LitePredictor
from tnseg_desktop.prompts import Box, Click

Crop = tuple[int, int, int, int]  # (row0, col0, row1, col1), exclusive ends


def crop_around(
    shape: tuple[int, int],
    prior: np.ndarray | None,
    clicks: Sequence[Click],
    box: Box | None,
    expand: float = 0.4,
    min_fraction: float = 0.25,
    min_pixels: int = 48,
) -> Crop | None:
    """Square-ish window around prior ∪ clicks ∪ box, enlarged by ``expand``; None = the whole frame.

    The side is at least ``min_fraction`` of the frame's shorter side (and
    ``min_pixels``), so a lone click still shows the network some context.
    """
    h, w = shape
    boxes: list[Box] = []
    if box is not None:
        boxes.append(box)
    elif prior is not None:
        pb = mask_ops.bounding_box(prior)
        if pb is not None:
            boxes.append(pb)
    for c in clicks:
        boxes.append((c.row, c.col, c.row + 1, c.col + 1))
    if not boxes:
        return None
    r0 = min(b[0] for b in boxes)
    c0 = min(b[1] for b in boxes)
    r1 = max(b[2] for b in boxes)
    c1 = max(b[3] for b in boxes)
    side = max(r1 - r0, c1 - c0) * (1.0 + expand)
    side = max(side, min_fraction * min(h, w), float(min_pixels))
    half = side / 2.0
    cr, cc = (r0 + r1) / 2.0, (c0 + c1) / 2.0
    out = _fit(cr - half, cr + half, h), _fit(cc - half, cc + half, w)
    (a0, a1), (b0, b1) = out
    if a0 == 0 and b0 == 0 and a1 == h and b1 == w:
        return None
    return a0, b0, a1, b1


def _fit(lo: float, hi: float, size: int) -> tuple[int, int]:
    """Shift the interval inside [0, size) keeping its length where possible."""
    length = hi - lo
    if length >= size:
        return 0, size
    if lo < 0:
        lo, hi = 0.0, length
    if hi > size:
        lo, hi = size - length, float(size)
    return int(np.floor(lo)), int(np.ceil(hi))


class LiteRefiner:
    name = "tnseg-lite"
    needs_embedding = False

    def __init__(self, predictor: LitePredictor | TnsegLite, device: str = "cpu", threshold: float = 0.5, expand: float = 0.4, box_margin: float = 0.1, zoom: bool = True) -> None:
        self.predictor = predictor if isinstance(predictor, LitePredictor) else LitePredictor(predictor, device)
        self.threshold = threshold
        self.expand = expand
        self.box_margin = box_margin
        self.zoom = zoom

    # the automatic mask, so one loaded network can serve both roles
    def auto_probs(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        return self.predictor.auto_probs(frames)

    def prepare(self, frame: np.ndarray) -> None:
        return None

    def is_prepared(self, frame: np.ndarray) -> bool:
        return True

    def invalidate(self) -> None:
        return None

    def crop_for(self, shape: tuple[int, int], prior: np.ndarray | None, prompts: Prompts) -> Crop | None:
        if not self.zoom:
            return None
        if prompts.box is None and (prior is None or not prior.any()):
            # nothing tells the object's extent yet: a window around lone clicks would cut the nodule
            # (measured on ddti/val from empty: Dice after 1 click 0.28 zoomed vs 0.75 on the whole frame)
            return None
        box = prompts.box
        if box is not None and self.box_margin > 0:
            r0, c0, r1, c1 = box
            mr, mc = int(round((r1 - r0) * self.box_margin)), int(round((c1 - c0) * self.box_margin))
            box = (r0 - mr, c0 - mc, r1 + mr, c1 + mc)
        return crop_around(shape, prior, prompts.clicks, box, expand=self.expand if prompts.box is None else 0.0)

    def refine(self, frame: np.ndarray, prior: np.ndarray | None, prompts: Prompts) -> np.ndarray:
        h, w = frame.shape[:2]
        if prior is not None and prior.shape != (h, w):
            raise ValueError(f"prior mask is {prior.shape}, the frame is {(h, w)}")
        clicks = list(prompts.clicks)
        box = prompts.box
        if box is not None and not clicks:
            # a box alone: tell the network where the object is with a click at the box centre
            clicks = [Click((box[0] + box[2] - 1) // 2, (box[1] + box[3] - 1) // 2, True)]
        prior_bool = None if prior is None else prior.astype(bool)
        crop = self.crop_for((h, w), prior_bool, Prompts(clicks, box, prompts.text))
        prob = self.predictor.refine_prob(frame, prior_bool, clicks, crop=crop)
        mask = prob >= self.threshold
        if box is not None:
            r0, c0, r1, c1 = box
            inside = np.zeros((h, w), dtype=bool)
            inside[max(0, r0) : r1, max(0, c0) : c1] = True
            mask &= inside
        return mask_ops.drop_pieces_at_negative_clicks(mask, clicks)
