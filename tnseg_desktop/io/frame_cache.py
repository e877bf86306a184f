"""A thread-safe LRU cache of decoded frames, bounded by the bytes it holds."""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

DEFAULT_CACHE_BYTES = 512 * 1024 * 1024


class FrameCache:
    """Maps frame index -> read-only array; evicts least recently used frames.

    A frame larger than the whole budget is never stored (the caller still
    gets it), so ``nbytes <= max_bytes`` always holds.
    """

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must be >= 0")
        self.max_bytes = int(max_bytes)
        self._items: OrderedDict[int, np.ndarray] = OrderedDict()
        self._nbytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    def get(self, index: int) -> np.ndarray | None:
        with self._lock:
            arr = self._items.get(index)
            if arr is None:
                self.misses += 1
                return None
            self._items.move_to_end(index)
            self.hits += 1
            return arr

    def put(self, index: int, arr: np.ndarray) -> None:
        size = int(arr.nbytes)
        with self._lock:
            old = self._items.pop(index, None)
            if old is not None:
                self._nbytes -= int(old.nbytes)
            if size > self.max_bytes:
                return
            while self._items and self._nbytes + size > self.max_bytes:
                _, evicted = self._items.popitem(last=False)
                self._nbytes -= int(evicted.nbytes)
                self.evictions += 1
            self._items[index] = arr
            self._nbytes += size

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._nbytes = 0

    def __contains__(self, index: object) -> bool:
        with self._lock:
            return index in self._items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    @property
    def nbytes(self) -> int:
        with self._lock:
            return self._nbytes

    def indices(self) -> list[int]:
        """Cached indices, least recently used first."""
        with self._lock:
            return list(self._items)
