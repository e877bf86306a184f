"""Prompt types and frame conversion shared by every layer (DESIGN.md section 1).

A click, a box, the disc maps tnseg-lite reads clicks from, and the grayscale
view of a frame. Engine, model and training all use these, so they live
beside errors.py and paths.py rather than in any one layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

Box = tuple[int, int, int, int]  # (row0, col0, row1, col1), exclusive ends, frame pixels


@dataclass(frozen=True)
class Click:
    row: int
    col: int
    positive: bool


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


def to_gray(frame: np.ndarray) -> np.ndarray:
    """uint8 HxW from HxW or HxWx3 (RGB)."""
    if frame.ndim == 2:
        return frame
    if frame.ndim == 3 and frame.shape[2] == 3:
        return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
    if frame.ndim == 3 and frame.shape[2] == 1:
        return frame[:, :, 0]
    raise ValueError(f"unexpected frame shape {frame.shape}")
