"""The content hash that identifies a loaded cine in the annotation store.

The same pixels give the same hash wherever the loop was opened from, so the
store finds the study (and its accepted frames) again.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

import numpy as np

from tnseg_desktop.io.types import CineMeta


class Frames(Protocol):
    """Anything with a length and ``frame(i)``: a :class:`Cine`, or a viewer's cached view of one."""

    def __len__(self) -> int: ...

    def frame(self, index: int) -> np.ndarray: ...


def content_hash(frames: Frames, meta: CineMeta) -> str:
    """sha256 of the loop's shape and SOP Instance UID and the pixels of its first, middle and last frames."""
    h = hashlib.sha256()
    n = len(frames)
    h.update(f"{n}|{meta.rows}|{meta.cols}|{meta.channels}|{meta.sop_instance_uid}".encode())
    for i in sorted({0, n // 2, n - 1}):
        h.update(np.ascontiguousarray(frames.frame(i)).tobytes())
    return h.hexdigest()
