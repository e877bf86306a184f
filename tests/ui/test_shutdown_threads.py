"""Shutdown joins every background thread it started.

A daemon thread still inside torch when the interpreter exits aborts the process ("terminate called without
an active exception", exit -6): ``tnseg-desktop FILE --screenshot OUT`` did so while its model load was still
running after the old 5 s wait.
"""

from __future__ import annotations

import threading
import time

from .fake_cine import FakeOpener
from tnseg_desktop.ui.background import Worker
from tnseg_desktop.ui.editing_controller import attach_editing
from tnseg_desktop.ui.main_window import MainWindow
from tnseg_desktop.ui.model_provider import FixedModels

from .editing_helpers import DiscRefiner


def test_worker_stop_drops_queued_jobs_and_cancels_the_running_one(qtbot):
    worker = Worker("test-stop")
    started, ran = threading.Event(), []

    def long_job(job) -> None:
        started.set()
        deadline = time.monotonic() + 10.0
        while not job.cancelled and time.monotonic() < deadline:
            time.sleep(0.01)
        ran.append("long")

    def queued(job) -> None:
        time.sleep(1.5)
        ran.append("queued")

    done: list[object] = []
    worker.submit(long_job, done.append)
    later = [worker.submit(queued, done.append) for _ in range(3)]
    assert started.wait(5.0)
    t0 = time.monotonic()
    assert worker.stop(10.0, drop_pending=True)
    assert time.monotonic() - t0 < 2.0
    assert not worker.running and ran == ["long"]
    assert all(job.cancelled and job.finished.is_set() for job in later)
    qtbot.wait(50)
    assert len(done) == 1  # dropped jobs get no callback
    assert not worker.busy


class SlowModels(FixedModels):
    """A model load that takes longer than the old shutdown wait (5 s) and cannot be interrupted."""

    LOAD_S = 6.0

    def __init__(self) -> None:
        super().__init__(refiner=DiscRefiner())
        self.loads_finished = 0
        self.load_started = threading.Event()

    def load(self, auto_name, refiner_name, reuse=None):
        self.load_started.set()
        time.sleep(self.LOAD_S)
        self.loads_finished += 1
        return super().load(auto_name, refiner_name, reuse)


def test_editing_shutdown_waits_for_the_model_load_in_progress(make_window, fake_opener):
    window = make_window(fake_opener)
    provider = SlowModels()
    ctl = attach_editing(window, provider=provider)
    assert provider.load_started.wait(5.0)
    window.shutdown()
    ctl.shutdown()
    assert provider.loads_finished == 1
    assert not any(w.running for w in (ctl.model_worker, ctl.batch_worker, ctl.store_worker))
    assert not ctl.accept_views.running


def test_window_shutdown_joins_retired_feeds_and_the_device_probe(qtbot, monkeypatch):
    import tnseg_desktop.ui.device_probe as device_probe

    def slow_probe() -> str:
        time.sleep(1.5)
        return "CPU (test)"

    monkeypatch.setattr(device_probe, "describe_compute_device", slow_probe)

    class SlowOpener(FakeOpener):
        def __call__(self, path):
            time.sleep(1.5 if path.startswith("first") else 0.0)
            return super().__call__(path)

    window = MainWindow(opener=SlowOpener(), probe_device=True)
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: window.device_probe._thread.is_alive() or window.device_probe.text is not None)
    window.open_path("first.dcm")
    first = window._opening
    window.open_path("second.dcm")  # the first, still opening, is retired
    feeds = [first, window._opening]
    window.shutdown()
    assert not any(feed._thread.is_alive() for feed in feeds)
    assert not window.device_probe._thread.is_alive()
    window.device_probe.start()  # a probe stopped at shutdown never starts again
    assert not window.device_probe._thread.is_alive()
