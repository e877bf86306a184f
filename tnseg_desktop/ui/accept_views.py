"""The background queue that writes each accepted frame's retraining views (training/accept_views.py).

One plain thread, one frame at a time, in the order accepted. Interactive work
comes first: before every encoder pass the thread waits while the model or
batch worker has work or the embedding precompute is still running (``busy``),
and while a retraining of the store runs (its worker encodes the frames it
needs itself; the view files are written atomically, so both writing one name
would be harmless, but the CPU is the worker's then). ``shutdown`` stops it
after the view in progress and joins it.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any, Callable

import numpy as np

log = logging.getLogger(__name__)

POLL_S = 0.1  # how often a waiting thread looks again at the interactive work
TRAINING_POLL_S = 2.0  # and at a retraining run (a store read)


class AcceptViews:
    """``submit`` from the GUI thread (never blocks); ``settings()`` is the retraining's own settings object."""

    def __init__(self, settings: Callable[[], Any], busy: Callable[[], bool]) -> None:
        self.settings = settings
        self.busy = busy
        self._queue: queue.Queue[tuple | None] = queue.Queue()
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._pending = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.frames_done = 0  # frames whose views are all written (or were found)

    def submit(self, store: Any, accepted: Any, frame: np.ndarray, refiner: Any) -> None:
        """Queue the views of one just-saved accepted frame, to be made with ``refiner``'s LiteMedSAM encoder."""
        if self._stop.is_set():
            return
        with self._lock:
            self._pending += 1
            self._idle.clear()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="tnseg-accept-views", daemon=True)
                self._thread.start()
        self._queue.put((store, accepted, frame, refiner, self.settings()))

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every queued frame is done (tests, benchmarks); True when idle."""
        return self._idle.wait(timeout)

    @property
    def running(self) -> bool:
        """Whether the thread is alive."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop after the view in progress (the rest stays for the worker to make) and join the thread."""
        self._stop.set()
        self._queue.put(None)
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    # --- the thread -------------------------------------------------------------------------
    def _wait_turn(self, store: Any) -> bool:
        """Block while interactive work or a retraining of the store runs; False when stopped."""
        while not self._stop.is_set():
            if self.busy():
                self._stop.wait(POLL_S)
            elif store.running_training_run() is not None:
                self._stop.wait(TRAINING_POLL_S)
            else:
                return True
        return False

    def _run(self) -> None:
        from tnseg_desktop.paths import view_cache_dir
        from tnseg_desktop.training.accept_views import encoder_of, write_accepted_frame_views

        while True:
            item = self._queue.get()
            if item is None or self._stop.is_set():
                return
            store, accepted, frame, refiner, settings = item
            try:
                # without the stock LiteMedSAM on the CPU in this session the worker encodes the frame itself
                encoder = encoder_of(refiner) if settings.decoder else None
                if encoder is not None and self._wait_turn(store):
                    write_accepted_frame_views(store, accepted, frame, encoder, settings, view_cache_dir(),
                                               cancelled=lambda: not self._wait_turn(store))
                    if not self._stop.is_set():
                        self.frames_done += 1
            except Exception as exc:  # a store closed or a disk full costs only the head start of the next run
                log.warning("the retraining views of frame %d were not written: %s", accepted.frame_index, exc)
            finally:
                with self._lock:
                    self._pending -= 1
                    if self._pending == 0:
                        self._idle.set()
