"""Opening a cine and decoding its frames on a background thread.

One :class:`CineFeed` per opened source. Its thread opens the file, reports
the cine, then decodes frames nearest to the frame the viewer wants first
(``set_focus``) into a memory-bounded cache, and closes the cine when it is
cancelled. The GUI thread never waits on a decode: it asks the cache, and if
the frame is not there yet it waits for ``frame_ready``.

Every signal carries the feed itself, so a window that has moved on to another
file can ignore late signals from the old one.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable, Protocol

import numpy as np
from PySide6.QtCore import QObject, Signal

from tnseg_desktop.io.types import CineMeta
from tnseg_desktop.ui.prefetch import PrefetchedFrames, frames_within_budget, prefetch_order

log = logging.getLogger(__name__)

DEFAULT_CACHE_BUDGET_BYTES = 512 * 1024 * 1024


class CineSource(Protocol):
    """What the viewer needs from the loader's ``Cine``."""

    meta: CineMeta

    def __len__(self) -> int: ...

    def frame(self, index: int) -> np.ndarray: ...

    def close(self) -> None: ...


Opener = Callable[[str], CineSource]


def default_opener(path: str) -> CineSource:
    # imported here so the window can appear before the loader's dependencies load
    from tnseg_desktop.io import open_source

    return open_source(path)


class CineFeed(QObject):
    """Background open + prefetch of one source."""

    opened = Signal(object, object)  # feed, cine
    open_failed = Signal(object, object)  # feed, exception
    frame_ready = Signal(object, int)  # feed, frame index (now in the cache)
    frame_failed = Signal(object, int, object)  # feed, frame index, exception

    def __init__(self, path: str, opener: Opener = default_opener, cache_budget_bytes: int = DEFAULT_CACHE_BUDGET_BYTES) -> None:
        super().__init__()
        self.path = path
        self._opener = opener
        self._budget = cache_budget_bytes
        self.cache = PrefetchedFrames()
        self._cond = threading.Condition()
        self._cancelled = False
        self._focus = 0
        self._n_frames = 0
        self._capacity = 0
        self._failed: dict[int, BaseException] = {}
        self._thread = threading.Thread(target=self._run, name="tnseg-cine-feed", daemon=True)

    # --- GUI thread -------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def frame(self, index: int) -> np.ndarray | None:
        """The decoded frame, or None when it is not decoded yet (never blocks)."""
        return self.cache.get(index)

    def set_focus(self, index: int) -> None:
        """Decode ``index`` next, then its neighbours; forget frames far from it."""
        with self._cond:
            self._focus = index
            if self._n_frames:
                self.cache.retain(prefetch_order(index, self._n_frames, self._capacity))
            self._cond.notify_all()

    def failure(self, index: int) -> BaseException | None:
        """The error that frame ``index`` gave when decoded, None if it has not failed."""
        with self._cond:
            return self._failed.get(index)

    @property
    def capacity(self) -> int:
        """How many frames the cache may hold (0 until the source is open)."""
        return self._capacity

    def cancel(self) -> None:
        """Stop decoding; the thread closes the source after its current frame."""
        with self._cond:
            self._cancelled = True
            self._cond.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        """Join the thread; True when it has finished."""
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    # --- decoder thread ---------------------------------------------------
    def _run(self) -> None:
        try:
            cine = self._opener(self.path)
        except BaseException as exc:  # reported to the GUI, never raised on this thread
            if not self._cancelled:
                self.open_failed.emit(self, exc)
            return
        try:
            n = len(cine)
            meta = cine.meta
            frame_nbytes = max(1, meta.rows * meta.cols * max(1, meta.channels))
            with self._cond:
                self._n_frames = n
                self._capacity = frames_within_budget(frame_nbytes, self._budget, n)
            if self._cancelled:
                return
            self.opened.emit(self, cine)
            self._decode_loop(cine, n)
        finally:
            try:
                cine.close()
            except Exception:  # closing must not take the thread down with a traceback
                log.debug("closing the cine failed", exc_info=True)

    def _next_index(self, n: int) -> int | None:
        for idx in prefetch_order(self._focus, n, self._capacity):
            if idx not in self._failed and idx not in self.cache:
                return idx
        return None

    def _decode_loop(self, cine: CineSource, n: int) -> None:
        while True:
            with self._cond:
                idx = None
                while not self._cancelled:
                    idx = self._next_index(n)
                    if idx is not None:
                        break
                    self._cond.wait()
                if self._cancelled:
                    return
            assert idx is not None
            try:
                frame = cine.frame(idx)
            except Exception as exc:
                with self._cond:
                    self._failed[idx] = exc
                if not self._cancelled:
                    self.frame_failed.emit(self, idx, exc)
                continue
            with self._cond:
                if self._cancelled:
                    return
                # the focus may have jumped while decoding: keep the frame only if it still belongs
                if idx in prefetch_order(self._focus, n, self._capacity):
                    self.cache.put(idx, frame)
                else:
                    continue
            self.frame_ready.emit(self, idx)
