"""Frames in, probability maps out: the square-input batching both segmenters share."""

from __future__ import annotations

from typing import Callable, Sequence

import cv2
import numpy as np

from tnseg_desktop.prompts import to_gray


def square_input(frame: np.ndarray, size: int) -> np.ndarray:
    """uint8 frame (HxW or HxWx3) -> float32 size x size grayscale in [0, 1]."""
    return cv2.resize(to_gray(frame), (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def probs_at_frame_size(frames: Sequence[np.ndarray], size: int, forward: Callable[[np.ndarray], np.ndarray], batch_size: int) -> list[np.ndarray]:
    """Run ``forward`` ((B, size, size) -> (B, size, size) probabilities) in batches; maps come back at each frame's resolution."""
    out: list[np.ndarray] = []
    for i in range(0, len(frames), batch_size):
        chunk = frames[i : i + batch_size]
        probs = forward(np.stack([square_input(f, size) for f in chunk]))
        for f, p in zip(chunk, probs):
            out.append(cv2.resize(p, (f.shape[1], f.shape[0]), interpolation=cv2.INTER_LINEAR))
    return out
