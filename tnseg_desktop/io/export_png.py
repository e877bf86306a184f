"""Masks as PNG files, one per frame: 0/255, single channel, at frame resolution (never resized)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from tnseg_desktop.store.maskfiles import write_mask_png


def mask_png_name(frame_index: int, prefix: str = "frame") -> str:
    return f"{prefix}_{int(frame_index):04d}.png"


def write_mask_pngs(masks_by_frame: Mapping[int, np.ndarray], out_dir: str | Path, prefix: str = "frame") -> list[Path]:
    """Write ``out_dir/<prefix>_NNNN.png`` (NNNN = 0-based frame index) for every mask; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return [write_mask_png(out / mask_png_name(f, prefix), m) for f, m in sorted(masks_by_frame.items())]
