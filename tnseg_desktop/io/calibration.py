"""Physical pixel size from ultrasound regions or PixelSpacing.

PS3.3 C.8.5.5: each item of SequenceOfUltrasoundRegions has bounds
(RegionLocationMinX0, MinY0, MaxX1, MaxY1, inclusive), PhysicalUnitsX/YDirection
codes (3 = cm) and PhysicalDeltaX/Y (units per pixel). Only regions measured in
cm on both axes calibrate a 2D image; of those the one covering most of the
image wins, so a small Doppler strip or a thumbnail never sets the scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

UNITS_CM = 3
SPATIAL_FORMAT_2D = 1
# plausible pixel sizes for diagnostic ultrasound (a 1 um pixel is already far finer than any probe resolves,
# a 5 mm pixel far coarser than any B-mode image); anything outside is a broken header, not a scale
MIN_MM_PER_PIXEL, MAX_MM_PER_PIXEL = 0.001, 5.0


def implausible(value_mm: float, what: str) -> str | None:
    """Why ``value_mm`` (mm per pixel) cannot be a real ultrasound pixel size, or None when it can."""
    if MIN_MM_PER_PIXEL <= value_mm <= MAX_MM_PER_PIXEL:
        return None
    return (f"{what} of {value_mm:.3g} mm per pixel is outside the plausible range for ultrasound "
            f"({MIN_MM_PER_PIXEL:g} to {MAX_MM_PER_PIXEL:g} mm)")


@dataclass
class Calibration:
    pixel_spacing_mm: tuple[float, float] | None = None  # (row, column)
    source: str = "uncalibrated"
    regions: list[tuple[int, int, int, int]] = field(default_factory=list)
    region: tuple[int, int, int, int] | None = None  # the region that gave the spacing
    # the regions that hold a 2D image (RegionSpatialFormat 1): one per view of a side-by-side frame
    image_regions: list[tuple[int, int, int, int]] = field(default_factory=list)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _positive_float(value: Any) -> float | None:
    try:
        f = abs(float(value))
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) and f > 0 else None


def _overlap_area(bounds: tuple[int, int, int, int], rows: int, cols: int) -> int:
    x0, y0, x1, y1 = bounds
    w = min(x1, cols - 1) - max(x0, 0) + 1
    h = min(y1, rows - 1) - max(y0, 0) + 1
    return max(w, 0) * max(h, 0)


def read_calibration(ds: Any, rows: int, cols: int) -> Calibration:
    cal = Calibration()
    rejected: list[str] = []  # why a calibration the file gives was not believed
    best: tuple[int, int, tuple[int, int, int, int], tuple[float, float]] | None = None
    for item in ds.get("SequenceOfUltrasoundRegions", None) or []:
        coords = [_int(item.get(k)) for k in ("RegionLocationMinX0", "RegionLocationMinY0", "RegionLocationMaxX1", "RegionLocationMaxY1")]
        if any(c is None for c in coords):
            continue
        bounds = (coords[0], coords[1], coords[2], coords[3])
        cal.regions.append(bounds)  # type: ignore[arg-type]
        if _int(item.get("RegionSpatialFormat")) == SPATIAL_FORMAT_2D:
            cal.image_regions.append(bounds)  # type: ignore[arg-type]
        if _int(item.get("PhysicalUnitsXDirection")) != UNITS_CM or _int(item.get("PhysicalUnitsYDirection")) != UNITS_CM:
            continue
        dx, dy = _positive_float(item.get("PhysicalDeltaX")), _positive_float(item.get("PhysicalDeltaY"))
        if dx is None or dy is None:
            continue
        reason = implausible(dx * 10.0, "PhysicalDeltaX") or implausible(dy * 10.0, "PhysicalDeltaY")
        if reason is not None:
            rejected.append(reason)
            continue
        is_2d = 1 if _int(item.get("RegionSpatialFormat")) in (SPATIAL_FORMAT_2D, None) else 0
        area = _overlap_area(bounds, rows, cols)  # type: ignore[arg-type]
        key = (is_2d, area, bounds, (dy * 10.0, dx * 10.0))
        if best is None or key[:2] > best[:2]:
            best = key  # type: ignore[assignment]
    if best is not None:
        cal.pixel_spacing_mm = best[3]
        cal.region = best[2]
        cal.source = "ultrasound region"
        return cal

    spacing = ds.get("PixelSpacing", None)
    if spacing is not None:
        try:
            values = [float(v) for v in spacing]
        except (TypeError, ValueError):
            values = []
        if len(values) == 2 and all(math.isfinite(v) and v > 0 for v in values):
            reason = implausible(values[0], "PixelSpacing") or implausible(values[1], "PixelSpacing")
            if reason is None:
                cal.pixel_spacing_mm = (values[0], values[1])
                cal.source = "PixelSpacing"
                return cal
            rejected.append(reason)
    if rejected:
        cal.source = f"uncalibrated: {rejected[0]}"
    return cal
