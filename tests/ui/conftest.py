"""Fixtures for viewer tests: a main window on an in-memory or real cine."""

from __future__ import annotations

import time

import pytest

from .fake_cine import FakeOpener
from tnseg_desktop.ui.main_window import MainWindow


@pytest.fixture
def make_window(qtbot):
    """Build a shown MainWindow (no device probe: torch stays out of GUI tests)."""
    windows: list[MainWindow] = []

    def make(opener=None) -> MainWindow:
        w = MainWindow(opener=opener, probe_device=False) if opener is not None else MainWindow(probe_device=False)
        qtbot.addWidget(w)
        w.resize(1000, 700)
        w.show()
        qtbot.waitExposed(w)
        w.activateWindow()
        windows.append(w)
        return w

    yield make
    for w in windows:
        w.shutdown()
        editing = w.editing
        if editing is not None:  # the app does this on aboutToQuit; a test's window never quits the app
            editing.shutdown()


@pytest.fixture
def fake_opener() -> FakeOpener:
    return FakeOpener(n_frames=20, fps=25.0)


MODAL_GRACE_S = 15.0


@pytest.fixture(autouse=True)
def _no_modal_left_open(qapp):
    """A modal dialog nobody answers (say a close guard shown at teardown after a failed test) would block
    the whole run in its event loop, where pytest-timeout's signal cannot reach; after MODAL_GRACE_S it is
    rejected and the test errors, naming the dialog."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    first_seen: dict[int, float] = {}
    stuck: list[str] = []

    def check() -> None:
        w = QApplication.activeModalWidget()
        if w is None:
            first_seen.clear()
            return
        since = first_seen.setdefault(id(w), time.monotonic())
        if time.monotonic() - since > MODAL_GRACE_S:
            text = w.text() if hasattr(w, "text") else w.windowTitle()
            stuck.append(f"{type(w).__name__} {text!r}")
            first_seen.pop(id(w), None)
            w.reject() if hasattr(w, "reject") else w.close()

    timer = QTimer()
    timer.timeout.connect(check)
    timer.start(250)
    yield
    timer.stop()
    if stuck:
        pytest.fail(f"modal dialog left open for {MODAL_GRACE_S:.0f} s and rejected: {'; '.join(stuck)}")
