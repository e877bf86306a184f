"""A main window with editing attached and a cine open, driven without a screen (benchmarks, screenshots, self-checks)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import Qt


def wait_until(app: Any, cond: Callable[[], bool], timeout_s: float = 120.0, what: str = "the window did not get ready") -> None:
    """Pump the event loop until ``cond()``; TimeoutError with ``what`` after ``timeout_s``."""
    end = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > end:
            raise TimeoutError(what)
        app.processEvents()
        time.sleep(0.005)


def open_offscreen_window(app: Any, cine: Path, provider: Any, store_dir: Path, size: tuple[int, int] = (1280, 800)) -> tuple[Any, Any]:
    """(MainWindow, EditingController) with ``cine`` open on frame 0, models loaded, and no close questions."""
    from tnseg_desktop.store import AnnotationStore
    from tnseg_desktop.ui.editing_controller import attach_editing
    from tnseg_desktop.ui.main_window import MainWindow

    window = MainWindow(probe_device=False)
    window.error_dialogs = False
    window.resize(*size)
    window.setAttribute(Qt.WidgetAttribute.WA_DontShowOnScreen, True)
    window.show()
    ctl = attach_editing(window, provider=provider, store=AnnotationStore(store_dir), ask_recovery=False)
    window.close_guards.clear()
    wait_until(app, lambda: ctl.model_panel.device_label.text() != "loading models…")
    window.open_path(str(cine))
    wait_until(app, lambda: window.displayed_index == 0 and ctl.study_id is not None)
    return window, ctl
