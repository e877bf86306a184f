"""Simulated clicks (DESIGN.md section 6) for training and interactive evaluation.

The next click goes to the point deepest inside the largest error region
(by distance transform): positive on a missed region, negative on a false one.
The click type and click maps live in ``tnseg_desktop.prompts``.
"""

from __future__ import annotations

import cv2
import numpy as np

from tnseg_desktop.prompts import Click


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
