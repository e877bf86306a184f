"""Masks as PNG files, one per frame: 0/255, single channel, at frame resolution (never resized).

The one mask PNG encoder: the annotation store's mask files, the training-set
export and ``segment`` all write masks through it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import cv2
import numpy as np

from tnseg_desktop.atomic_write import atomic_write_bytes


def mask_png_bytes(mask: np.ndarray) -> bytes:
    """A 2-D mask (nonzero is nodule; HxWx1 is accepted) as 0/255 single-channel PNG bytes."""
    arr = np.asarray(mask)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"a mask must be a 2-D array at frame resolution, got shape {arr.shape}")
    ok, buf = cv2.imencode(".png", (arr != 0).astype(np.uint8) * 255, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise ValueError("a mask could not be encoded as PNG")
    return buf.tobytes()


def write_mask_png(path: str | Path, mask: np.ndarray) -> Path:
    """The one mask-to-disk writer: a 0/255 single-channel PNG, atomically."""
    return atomic_write_bytes(Path(path), mask_png_bytes(mask))


def mask_png_name(frame_index: int, prefix: str = "frame") -> str:
    return f"{prefix}_{int(frame_index):04d}.png"


def write_mask_pngs(masks_by_frame: Mapping[int, np.ndarray], out_dir: str | Path, prefix: str = "frame") -> list[Path]:
    """Write ``out_dir/<prefix>_NNNN.png`` (NNNN = 0-based frame index) for every mask; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return [write_mask_png(out / mask_png_name(f, prefix), m) for f, m in sorted(masks_by_frame.items())]
