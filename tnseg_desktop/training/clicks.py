"""Simulated clicks (DESIGN.md section 6) and click maps for tnseg-lite.

The next click goes to the point deepest inside the largest error region
(by distance transform): positive on a missed region, negative on a false one.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Click:
    row: int
    col: int
    positive: bool


def _largest_component(mask: np.ndarray) -> tuple[np.ndarray, int]:
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 1:
        return np.zeros_like(mask, dtype=bool), 0
    k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return labels == k, int(stats[k, cv2.CC_STAT_AREA])


def next_click(pred: np.ndarray, gt: np.ndarray) -> Click | None:
    """The click a careful annotator would make next, or None when there is no error."""
    p, g = pred > 0, gt > 0
    missed, missed_area = _largest_component(g & ~p)
    false, false_area = _largest_component(p & ~g)
    if missed_area == 0 and false_area == 0:
        return None
    positive = missed_area >= false_area
    region = missed if positive else false
    # pad so that the image border counts as the region's edge
    padded = np.pad(region.astype(np.uint8), 1)
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]
    r, c = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return Click(int(r), int(c), positive)


def click_radius(shape: tuple[int, int]) -> int:
    """Disc radius of a click in a map of this shape (scales with the image)."""
    return max(2, int(round(min(shape) / 40)))


def click_maps(clicks: list[Click], shape: tuple[int, int], scale: tuple[float, float] = (1.0, 1.0), offset: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """(2, H, W) float32 positive/negative disc maps.

    Click coordinates are in source pixels; ``(row, col) -> ((row - offset) * scale)``
    maps them into this map (used when the map is a resized crop of the frame).
    """
    maps = np.zeros((2, shape[0], shape[1]), dtype=np.float32)
    radius = click_radius(shape)
    for c in clicks:
        r = int(round((c.row - offset[0]) * scale[0]))
        q = int(round((c.col - offset[1]) * scale[1]))
        if -radius <= r < shape[0] + radius and -radius <= q < shape[1] + radius:
            cv2.circle(maps[0 if c.positive else 1], (q, r), radius, 1.0, thickness=-1)
    return maps
