"""`Cine`: lazily decoded frames of one source, with a bounded cache.

A reader (DICOM file, folder series, plain image) implements `FrameSource`;
`Cine` adds caching, thread safety and the sequence interface the engine and
UI use. Frames are decoded only when asked for, one at a time.
"""

from __future__ import annotations

import threading
from typing import Iterator, Protocol

import numpy as np

from tnseg_desktop.io.frame_cache import DEFAULT_CACHE_BYTES, FrameCache
from tnseg_desktop.io.types import CineMeta


class FrameSource(Protocol):
    meta: CineMeta

    def decode(self, index: int) -> np.ndarray:
        """Frame `index` as a uint8 HxW or HxWx3 array (a new array each call)."""
        ...

    def close(self) -> None: ...


class Cine:
    """Frames of one DICOM file, series folder or image, decoded on demand.

    `frame(i)` may be called from several threads at once: each frame is
    decoded by exactly one of them while the others wait for its result.
    Returned arrays are read-only and shared; copy before modifying.
    """

    def __init__(self, source: FrameSource, cache_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self._source = source
        self.meta: CineMeta = source.meta
        self.cache = FrameCache(cache_bytes)
        self._lock = threading.Lock()
        self._in_flight: dict[int, threading.Event] = {}
        self._decode_count = 0
        self._closed = False

    def __len__(self) -> int:
        return self.meta.frames

    def _normalise_index(self, index: int) -> int:
        n = self.meta.frames
        i = int(index)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"frame {index} out of range (0..{n - 1})")
        return i

    def frame(self, index: int) -> np.ndarray:
        i = self._normalise_index(index)
        while True:
            if self._closed:
                raise ValueError("the cine is closed")
            cached = self.cache.get(i)
            if cached is not None:
                return cached
            with self._lock:
                event = self._in_flight.get(i)
                owner = event is None
                if owner:
                    event = threading.Event()
                    self._in_flight[i] = event
            if owner:
                break
            # another thread is decoding this frame; take its result from the
            # cache, or decode it ourselves if it could not be cached
            event.wait()
            cached = self.cache.get(i)
            if cached is not None:
                return cached
        try:
            arr = self._source.decode(i)
            arr.setflags(write=False)
            with self._lock:
                self._decode_count += 1
            self.cache.put(i, arr)
            return arr
        finally:
            with self._lock:
                self._in_flight.pop(i, None)
            event.set()

    __getitem__ = frame

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self.frame(i)

    @property
    def decode_count(self) -> int:
        """How many frame decodes have run (cache misses), for tests and diagnostics."""
        with self._lock:
            return self._decode_count

    @property
    def frame_shape(self) -> tuple[int, ...]:
        m = self.meta
        return (m.rows, m.cols) if m.channels == 1 else (m.rows, m.cols, m.channels)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.cache.clear()
        self._source.close()

    def __enter__(self) -> "Cine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        m = self.meta
        return f"Cine({m.source_path!r}, frames={m.frames}, {m.rows}x{m.cols}x{m.channels})"
