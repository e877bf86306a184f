"""Fixtures for viewer tests: a main window on an in-memory or real cine."""

from __future__ import annotations

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


@pytest.fixture
def fake_opener() -> FakeOpener:
    return FakeOpener(n_frames=20, fps=25.0)
