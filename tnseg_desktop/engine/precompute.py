"""Background precompute of every frame's embedding, nearest to the current frame first.

One plain Python thread walks the loop: after each frame it picks the not yet
prepared frame closest to the current one (the next frame wins a tie, since
playback and review move forward), so moving the current frame re-prioritises
at once. Cancelling sets a flag checked between frames: the embedding being
computed finishes (it cannot be interrupted) but nothing new starts.

With ``max_frames`` (what the memory cache holds) only that many frames
around the current one are kept ready: the worker then idles and wakes when
the current frame moves, instead of evicting near frames with far ones.

A click never waits for this queue: the refiner computes a missing embedding
itself, and the cache's per-key lock makes the worker and the click share the
one computation when they want the same frame.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Protocol

import numpy as np

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int, int], None]  # (frame index just done, frames done, total)


class Preparable(Protocol):
    def prepare(self, frame: np.ndarray) -> None: ...

    def is_prepared(self, frame: np.ndarray) -> bool: ...


def frame_getter(source: Any) -> tuple[int, Callable[[int], np.ndarray]]:
    """(count, get) for a ``Cine`` (``frame(i)``), a sequence of arrays, or a (count, callable) pair."""
    if isinstance(source, tuple) and len(source) == 2 and callable(source[1]):
        return int(source[0]), source[1]
    if hasattr(source, "frame") and callable(source.frame):
        return len(source), source.frame
    return len(source), source.__getitem__


def nearest_order(count: int, current: int) -> list[int]:
    """All indices by distance from ``current``; the later frame first on a tie."""
    return sorted(range(count), key=lambda i: (abs(i - current), i < current))


class Precompute:
    def __init__(
        self,
        source: Any,
        refiner: Preparable,
        current: int = 0,
        on_progress: ProgressCallback | None = None,
        on_error: Callable[[int, BaseException], None] | None = None,
        max_frames: int | None = None,
    ) -> None:
        self.count, self._get = frame_getter(source)
        self.refiner = refiner
        self.on_progress = on_progress
        self.on_error = on_error
        self._current = min(max(0, current), max(0, self.count - 1))
        self._done: set[int] = set()
        self._failed: set[int] = set()
        self.max_frames = self.count if max_frames is None else max(1, min(int(max_frames), self.count))
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._moved = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self.visited: list[int] = []  # order in which frames were handled (prepared or found ready)
        self.computing: int | None = None

    # -- control ----------------------------------------------------------
    def start(self) -> "Precompute":
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="tnseg-embedding-precompute", daemon=True)
            self._thread.start()
        return self

    def set_current(self, index: int) -> None:
        """The user moved to frame ``index``: its neighbourhood comes next."""
        with self._lock:
            self._current = min(max(0, int(index)), max(0, self.count - 1))
            self._moved.notify_all()

    def cancel(self, wait: bool = True, timeout: float | None = None) -> bool:
        """Stop after the frame in progress; True when the worker has ended."""
        self._cancel.set()
        with self._lock:
            self._moved.notify_all()
        if wait and self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every frame is done or the worker stopped; True if it ended."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def done_count(self) -> int:
        with self._lock:
            return len(self._done)

    # -- worker -------------------------------------------------------------
    def _next(self) -> int | None:
        """The next frame to prepare; waits while the window is done but frames remain outside it."""
        with self._lock:
            while not self._cancel.is_set():
                skip = self._done | self._failed
                for i in nearest_order(self.count, self._current)[: self.max_frames]:
                    if i not in skip:
                        return i
                if len(skip) >= self.count or self.max_frames >= self.count:
                    return None
                self._moved.wait()
        return None

    def _run(self) -> None:
        while not self._cancel.is_set():
            index = self._next()
            if index is None:
                return
            self.computing = index
            try:
                frame = self._get(index)
                if not self.refiner.is_prepared(frame):
                    self.refiner.prepare(frame)
            except Exception as exc:  # a broken frame must not stop the others
                log.warning("embedding of frame %d failed: %s", index, exc)
                with self._lock:
                    self._failed.add(index)
                if self.on_error is not None:
                    self.on_error(index, exc)
                continue
            finally:
                self.computing = None
            with self._lock:
                self._done.add(index)
                self.visited.append(index)
                done = len(self._done)
            if self.on_progress is not None:
                self.on_progress(index, done, self.count)
