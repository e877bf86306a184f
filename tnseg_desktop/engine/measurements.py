"""Nodule size from a mask: area, longest diameter and the longest chord perpendicular to it.

The one place these are computed (the viewer, the CSV export). Distances are
between pixel centres; with a pixel spacing they are measured in millimetres
in physical space (rows and columns may have different spacing), otherwise in
pixels. Endpoints are (x, y) image coordinates of pixel centres (col + 0.5,
row + 0.5), ready to draw on the canvas.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

Point = tuple[float, float]  # (x, y) in image coordinates


@dataclass(frozen=True)
class Measurement:
    area_px: int
    area_mm2: float | None
    diameter: float  # longest diameter, mm when calibrated else px
    diameter_ends: tuple[Point, Point]
    perpendicular: float  # longest chord perpendicular to the diameter, same unit
    perpendicular_ends: tuple[Point, Point]
    unit: str  # "mm" or "px"

    def summary(self) -> str:
        """One line a clinician can paste into a report."""
        if self.unit == "mm" and self.area_mm2 is not None:
            area = f"area {self.area_mm2:.1f} mm²"
        else:
            area = f"area {self.area_px} px²"
        return f"{area}, longest diameter {self.diameter:.1f} {self.unit}, perpendicular {self.perpendicular:.1f} {self.unit}"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values, as the store saves them with an accepted frame."""
        return {
            "area_px": self.area_px,
            "area_mm2": self.area_mm2,
            "diameter": self.diameter,
            "diameter_ends": [list(p) for p in self.diameter_ends],
            "perpendicular": self.perpendicular,
            "perpendicular_ends": [list(p) for p in self.perpendicular_ends],
            "unit": self.unit,
        }


def _foreground_points(mask: np.ndarray) -> np.ndarray:
    """(N, 2) float array of (row, col) of every foreground pixel."""
    rows, cols = np.nonzero(mask)
    return np.stack([rows, cols], axis=1).astype(np.float64)


def max_diameter_px(mask: np.ndarray) -> float:
    """Longest distance in pixels between two foreground pixel centres."""
    m = measure(mask, None)
    return 0.0 if m is None else m.diameter


def _hull(points_rc: np.ndarray) -> np.ndarray:
    if len(points_rc) < 3:
        return points_rc
    hull = cv2.convexHull(points_rc[:, ::-1].astype(np.float32)).reshape(-1, 2)[:, ::-1]
    return hull.astype(np.float64)


def measure(mask: np.ndarray, spacing_mm: tuple[float, float] | None = None) -> Measurement | None:
    """Size of the foreground of ``mask`` (None when empty); ``spacing_mm`` = (row, column) spacing."""
    m = np.asarray(mask, dtype=bool)
    pts = _foreground_points(m)
    if len(pts) == 0:
        return None
    sy, sx = (float(spacing_mm[0]), float(spacing_mm[1])) if spacing_mm else (1.0, 1.0)
    scale = np.array([sy, sx])
    area_px = int(len(pts))
    area_mm2 = area_px * sy * sx if spacing_mm else None

    # the longest diameter joins two convex hull vertices; measured in physical space
    hull = _hull(pts) * scale
    if len(hull) == 1:
        ends = ((float(pts[0][1]) + 0.5, float(pts[0][0]) + 0.5),) * 2
        return Measurement(area_px, area_mm2, 0.0, ends, 0.0, ends, "mm" if spacing_mm else "px")
    d = hull[:, None, :] - hull[None, :, :]
    dist = np.sqrt((d ** 2).sum(-1))
    i, j = np.unravel_index(int(np.argmax(dist)), dist.shape)
    a, b = hull[i], hull[j]
    diameter = float(dist[i, j])

    # the perpendicular: project every pixel onto the axis (u) and across it (v), both in physical units;
    # pixels within half a pixel's step of the same u form one chord, the widest chord wins
    axis = (b - a) / max(diameter, 1e-12)
    normal = np.array([-axis[1], axis[0]])
    phys = pts * scale
    u = (phys - a) @ axis
    v = (phys - a) @ normal
    step = min(sy, sx)
    bins = np.round(u / step).astype(np.int64)
    order = np.argsort(bins, kind="stable")
    bins_sorted, v_sorted = bins[order], v[order]
    starts = np.flatnonzero(np.r_[True, bins_sorted[1:] != bins_sorted[:-1]])
    vmax = np.maximum.reduceat(v_sorted, starts)
    vmin = np.minimum.reduceat(v_sorted, starts)
    k = int(np.argmax(vmax - vmin))
    perpendicular = float(vmax[k] - vmin[k])
    u_k = bins_sorted[starts[k]] * step
    p0 = a + axis * u_k + normal * vmin[k]
    p1 = a + axis * u_k + normal * vmax[k]

    def to_xy(p_phys: np.ndarray) -> Point:
        r, c = p_phys / scale
        return (float(c) + 0.5, float(r) + 0.5)

    return Measurement(
        area_px=area_px,
        area_mm2=area_mm2,
        diameter=diameter,
        diameter_ends=(to_xy(a), to_xy(b)),
        perpendicular=perpendicular,
        perpendicular_ends=(to_xy(p0), to_xy(p1)),
        unit="mm" if spacing_mm else "px",
    )
