"""Which frames to keep decoded around the one on screen, and in what order.

Pure functions and a small thread-safe cache, shared by the decoding thread
and the GUI thread. No Qt here, so the policy can be tested on its own.
"""

from __future__ import annotations

import threading
from typing import Iterable

import numpy as np

# For every frame behind the current one, prefetch this many ahead: playback
# runs forwards, so frames ahead are needed first.
FORWARD_BIAS = 3


def prefetch_order(focus: int, n_frames: int, capacity: int) -> list[int]:
    """Frame indices to hold, nearest to ``focus`` first, wrapping around (loops play on).

    The list starts with ``focus`` itself and holds at most ``capacity`` indices.
    """
    if n_frames <= 0 or capacity <= 0:
        return []
    focus %= n_frames
    capacity = min(capacity, n_frames)
    order = [focus]
    seen = {focus}
    ahead = behind = 1
    while len(order) < capacity:
        for _ in range(FORWARD_BIAS):
            idx = (focus + ahead) % n_frames
            ahead += 1
            if idx not in seen:
                seen.add(idx)
                order.append(idx)
                if len(order) >= capacity:
                    return order
        idx = (focus - behind) % n_frames
        behind += 1
        if idx not in seen:
            seen.add(idx)
            order.append(idx)
    return order


def frames_within_budget(frame_nbytes: int, budget_bytes: int, n_frames: int) -> int:
    """How many decoded frames fit in the memory budget (never fewer than 2)."""
    if frame_nbytes <= 0:
        return n_frames
    return max(2, min(n_frames, budget_bytes // frame_nbytes))


class PrefetchedFrames:
    """The decoded frames around the one on screen, by index; written by the decoder thread, read by the GUI thread.

    Not the loader's byte-bounded LRU (io.frame_cache.FrameCache): this holds exactly the frames the
    prefetch policy keeps (see ``retain``).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frames: dict[int, np.ndarray] = {}

    def get(self, index: int) -> np.ndarray | None:
        with self._lock:
            return self._frames.get(index)

    def put(self, index: int, frame: np.ndarray) -> None:
        with self._lock:
            self._frames[index] = frame

    def __contains__(self, index: object) -> bool:
        with self._lock:
            return index in self._frames

    def __len__(self) -> int:
        with self._lock:
            return len(self._frames)

    def retain(self, keep: Iterable[int]) -> None:
        """Drop every frame not in ``keep``."""
        keep_set = set(keep)
        with self._lock:
            for idx in [i for i in self._frames if i not in keep_set]:
                del self._frames[idx]

    def clear(self) -> None:
        with self._lock:
            self._frames.clear()
