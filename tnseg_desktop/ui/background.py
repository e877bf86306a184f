"""Running work off the GUI thread and getting results back on it.

A :class:`Worker` owns one thread, so jobs given to it run one after another
in the order given (model passes must not race each other for the CPU, and
store writes must keep their order). Results, errors and progress come back
through Qt signals, which queue them onto the GUI thread.

Every background thread of the app is named ``tnseg-*`` and is a daemon. A
daemon thread still inside torch when the interpreter exits makes the process
abort ("terminate called without an active exception"), so whoever starts one
joins it at shutdown (with a bounded wait); :func:`live_background_threads`
says which are left.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any, Callable

from PySide6.QtCore import QObject, Signal

log = logging.getLogger(__name__)


class Job:
    """One unit of work; ``cancel()`` sets a flag the function may check via ``job.cancelled``."""

    def __init__(self, fn: Callable[["Job"], Any], on_done: Callable[[Any], None] | None,
                 on_error: Callable[[BaseException], None] | None, name: str) -> None:
        self.fn = fn
        self.on_done = on_done
        self.on_error = on_error
        self.name = name
        self._cancel = threading.Event()
        self.finished = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()


class Worker(QObject):
    """A single background thread with a job queue."""

    _done = Signal(object, object)  # job, result
    _failed = Signal(object, object)  # job, exception
    busy_changed = Signal(bool)

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._pending = 0
        self._lock = threading.Lock()
        self._current: Job | None = None  # the job the thread is running
        self._thread = threading.Thread(target=self._run, name=f"tnseg-{name}", daemon=True)
        self._done.connect(self._on_done)
        self._failed.connect(self._on_failed)
        self._thread.start()

    def submit(self, fn: Callable[[Job], Any], on_done: Callable[[Any], None] | None = None,
               on_error: Callable[[BaseException], None] | None = None, name: str = "") -> Job:
        job = Job(fn, on_done, on_error, name)
        with self._lock:
            self._pending += 1
            first = self._pending == 1
        if first:
            self.busy_changed.emit(True)
        self._queue.put(job)
        return job

    @property
    def busy(self) -> bool:
        with self._lock:
            return self._pending > 0

    def stop(self, timeout: float = 2.0, drop_pending: bool = False) -> bool:
        """End the thread once the job in progress is over; True when it has ended within ``timeout``.

        Without ``drop_pending`` every queued job runs first (store writes must not be lost); with it the
        queued jobs are dropped unrun (no callback follows) and the running one is asked to cancel.
        """
        if drop_pending:
            self._drop_pending()
        self._queue.put(None)
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def running(self) -> bool:
        """Whether the thread is still alive."""
        return self._thread.is_alive()

    def _drop_pending(self) -> None:
        dropped = 0
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job.cancel()
                job.finished.set()
                dropped += 1
        current = self._current
        if current is not None:
            current.cancel()
        if dropped:
            with self._lock:
                self._pending -= dropped
                idle = self._pending == 0
            if idle:
                self.busy_changed.emit(False)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            self._current = job
            try:
                result = None if job.cancelled else job.fn(job)
            except BaseException as exc:  # reported on the GUI thread
                job.finished.set()
                self._failed.emit(job, exc)
            else:
                job.finished.set()
                self._done.emit(job, result)
            finally:
                self._current = None

    def _finish(self) -> None:
        with self._lock:
            self._pending -= 1
            idle = self._pending == 0
        if idle:
            self.busy_changed.emit(False)

    def _on_done(self, job: Job, result: Any) -> None:
        try:
            if job.on_done is not None:
                job.on_done(result)
        finally:
            self._finish()

    def _on_failed(self, job: Job, exc: BaseException) -> None:
        try:
            if job.on_error is not None:
                job.on_error(exc)
            else:
                log.error("background job %s failed", job.name, exc_info=(type(exc), exc, exc.__traceback__))
        finally:
            self._finish()


def live_background_threads() -> list[str]:
    """Names of the app's background threads (``tnseg-*``) still alive."""
    return [t.name for t in threading.enumerate() if t.name.startswith("tnseg-") and t.is_alive()]


class Deadline:
    """One bounded wait shared by several joins at shutdown."""

    def __init__(self, seconds: float) -> None:
        self._end = time.monotonic() + seconds

    def left(self) -> float:
        """Seconds left (never negative)."""
        return max(0.0, self._end - time.monotonic())


class Relay(QObject):
    """Emits from any thread; the connected slots run on the GUI thread."""

    fired = Signal(object, object)

    def send(self, kind: object, payload: object) -> None:
        """Emit from a worker thread; a no-op once the window (and this relay) has been deleted."""
        try:
            self.fired.emit(kind, payload)
        except RuntimeError:  # "Signal source has been deleted": the window closed while the thread ran
            log.debug("relay gone; dropped %r from a background thread", kind)
