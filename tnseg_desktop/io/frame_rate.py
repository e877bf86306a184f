"""Frame rate of a cine from its DICOM timing attributes (PS3.3 C.7.6.5 Cine module)."""

from __future__ import annotations

import math
from typing import Any

DEFAULT_FPS = 30.0


def _positive_float(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) and f > 0 else None


def read_frame_rate(ds: Any) -> tuple[float, str]:
    """(frames per second, the attribute it came from); 30 fps "default" when none is usable."""
    frame_time = _positive_float(ds.get("FrameTime", None))
    if frame_time is not None:
        return 1000.0 / frame_time, "FrameTime"
    vector = ds.get("FrameTimeVector", None)
    if vector is not None:
        try:
            values = [float(v) for v in (vector if not isinstance(vector, (int, float, str)) else [vector])]
        except (TypeError, ValueError):
            values = []
        # the first entry is the (zero) time before frame 1
        steps = [v for v in values[1:] if math.isfinite(v) and v > 0] or [v for v in values if math.isfinite(v) and v > 0]
        if steps:
            return 1000.0 / (sum(steps) / len(steps)), "FrameTimeVector"
    for keyword in ("CineRate", "RecommendedDisplayFrameRate"):
        rate = _positive_float(ds.get(keyword, None))
        if rate is not None:
            return rate, keyword
    return DEFAULT_FPS, "default"
