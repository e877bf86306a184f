"""Pure operations on boolean masks (HxW, frame resolution).

Every function returns a new array and leaves its input untouched, so the
editing session can diff before and after for its undo history.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from tnseg_desktop.prompts import Click

Point = tuple[int, int]  # (row, col) in frame pixels


def _as_u8(mask: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(mask, dtype=np.uint8)


def stroke_footprint(shape: tuple[int, int], points: Sequence[Point], radius: int) -> np.ndarray:
    """Pixels covered by a round brush of ``radius`` dragged through ``points``.

    A single point is a disc. Points outside the frame are fine: the part of
    the brush inside the frame is drawn.
    """
    canvas = np.zeros(shape, dtype=np.uint8)
    if not points:
        return canvas.astype(bool)
    r = max(0, int(round(radius)))
    pts = [(int(round(c)), int(round(rr))) for rr, c in points]  # OpenCV wants (x, y)
    for p in pts:
        cv2.circle(canvas, p, r, 1, thickness=-1)
    for a, b in zip(pts[:-1], pts[1:]):
        cv2.line(canvas, a, b, 1, thickness=2 * r + 1)
    return canvas.astype(bool)


def paint(mask: np.ndarray, points: Sequence[Point], radius: int) -> np.ndarray:
    return mask.astype(bool) | stroke_footprint(mask.shape[:2], points, radius)


def erase(mask: np.ndarray, points: Sequence[Point], radius: int) -> np.ndarray:
    return mask.astype(bool) & ~stroke_footprint(mask.shape[:2], points, radius)


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Background regions that do not reach the frame border become foreground."""
    m = mask.astype(bool)
    h, w = m.shape
    # a one-pixel background frame lets one flood fill reach every border-touching background region
    padded = np.zeros((h + 2, w + 2), dtype=np.uint8)
    padded[1:-1, 1:-1] = m
    flood_mask = np.zeros((h + 4, w + 4), dtype=np.uint8)
    cv2.floodFill(padded, flood_mask, (0, 0), 2)
    outside = padded[1:-1, 1:-1] == 2
    return ~outside


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected foreground component (empty stays empty)."""
    m = _as_u8(mask)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    if n <= 1:
        return np.zeros(m.shape, dtype=bool)
    k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return labels == k


def drop_pieces_at_negative_clicks(mask: np.ndarray, clicks: Sequence[Click], radius_fraction: float = 0.03) -> np.ndarray:
    """Remove the stray pieces a negative click lands in or next to.

    A refiner asked to cut a region often leaves a thin sliver around the
    negative click. Any 8-connected piece within ``radius_fraction`` of the
    frame's shorter side from a negative click is dropped, unless it is the
    largest piece or holds a positive click.
    """
    m = _as_u8(mask)
    negatives = [(c.row, c.col) for c in clicks if not c.positive]
    if not negatives:
        return m.astype(bool)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    if n <= 2:
        return m.astype(bool)
    h, w = m.shape
    keep = {0, 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))}
    keep |= {int(labels[c.row, c.col]) for c in clicks if c.positive and 0 <= c.row < h and 0 <= c.col < w}
    radius = max(2, int(round(radius_fraction * min(h, w))))
    near: set[int] = set()
    for r, c in negatives:
        window = labels[max(0, r - radius) : r + radius + 1, max(0, c - radius) : c + radius + 1]
        near |= set(np.unique(window).tolist())
    drop = sorted(near - keep)
    if not drop:
        return m.astype(bool)
    return (labels > 0) & ~np.isin(labels, drop)


def cleared(mask: np.ndarray) -> np.ndarray:
    return np.zeros(mask.shape[:2], dtype=bool)


def bounding_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(row0, col0, row1, col1) with exclusive ends, or None for an empty mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def deepest_point(mask: np.ndarray) -> Point | None:
    """The foreground pixel farthest from the background (the frame border counts as background)."""
    m = mask.astype(bool)
    if not m.any():
        return None
    padded = np.pad(m.astype(np.uint8), 1)
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]
    r, c = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return int(r), int(c)


def centroid(mask: np.ndarray) -> tuple[float, float] | None:
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return None
    return float(rows.mean()), float(cols.mean())
