"""GUI entry point: ``tnseg-desktop [PATH] [--screenshot OUT.png]`` (cli.py dispatches here)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time

from PySide6.QtCore import QMessageLogContext, QSize, Qt, QtMsgType, qInstallMessageHandler
from PySide6.QtWidgets import QApplication

from tnseg_desktop.errors import UserFacingError
from tnseg_desktop.ui.background import live_background_threads
from tnseg_desktop.ui.main_window import MainWindow
from tnseg_desktop.ui.theme import apply_theme
from tnseg_desktop.ui.window_state import restore_window_state

log = logging.getLogger(__name__)

SCREENSHOT_SIZE = QSize(1280, 800)
DEFAULT_WINDOW_SIZE = QSize(1280, 820)
SCREENSHOT_TIMEOUT_S = 120.0
DEVICE_PROBE_TIMEOUT_S = 30.0


# while the QApplication is built: the real stderr (Qt's own writes to fd 2 go elsewhere) and Qt's last platform warning
_startup: dict[str, object] = {"stderr_fd": None, "platform_warning": ""}


def _qt_message_to_log(kind: QtMsgType, context: QMessageLogContext, message: str) -> None:
    # Qt's own chatter (e.g. the offscreen plugin's warnings) would otherwise add lines
    # to stderr, where the CLI promises exactly one line per error
    level = logging.ERROR if kind in (QtMsgType.QtCriticalMsg, QtMsgType.QtFatalMsg) else logging.DEBUG
    logging.getLogger("qt").log(level, "%s", message)
    if kind == QtMsgType.QtWarningMsg and str(context.category or "").startswith("qt.qpa"):
        _startup["platform_warning"] = " ".join(message.split())
    if kind == QtMsgType.QtFatalMsg:
        # Qt aborts (exit 134, a core dump) after a fatal message: one line and the exit code of any other error instead
        first = " ".join(message.split()).split(". ")[0].rstrip(".") or "Qt stopped"
        detail = _startup["platform_warning"]
        line = f"tnseg-desktop: the window could not start: {first}" + (f" ({detail})" if detail else "") + "\n"
        fd = _startup["stderr_fd"]
        os.write(fd if isinstance(fd, int) else 2, line.encode("utf-8", "replace"))
        os._exit(2)


def get_application() -> QApplication:
    """The one QApplication, themed."""
    app = QApplication.instance()
    if app is None:
        qInstallMessageHandler(_qt_message_to_log)
        app = _new_application()
        app.setApplicationName("tnseg-desktop")
        app.setOrganizationName("tnseg-desktop")
        apply_theme(app)
    return app  # type: ignore[return-value]


def _new_application() -> QApplication:
    """QApplication(), with what Qt itself prints to stderr while it starts kept off the terminal."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as chatter:
        os.dup2(chatter.fileno(), 2)
        _startup["stderr_fd"] = saved
        try:
            app = QApplication([sys.argv[0] if sys.argv else "tnseg-desktop"])
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            _startup["stderr_fd"] = None
        if log.isEnabledFor(logging.DEBUG):
            chatter.seek(0)
            log.debug("Qt at start: %s", chatter.read().decode("utf-8", "replace"))
    return app


def _wait_until(app: QApplication, condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        app.processEvents()
        time.sleep(0.005)
    return True


def render_screenshot(window: MainWindow, path: str, out_png: str, size: QSize = SCREENSHOT_SIZE) -> None:
    """Open ``path`` in ``window``, wait for frame 0 and the device name, write ``out_png``.

    Raises the loader's error for a bad file (the CLI prints it on one line).
    """
    app = get_application()
    window.error_dialogs = False
    window.resize(size)
    # laid out and painted like a shown window, but never on a screen
    window.setAttribute(Qt.WidgetAttribute.WA_DontShowOnScreen, True)
    window.show()
    window.open_path(path)
    loaded = _wait_until(app, lambda: window.displayed_index >= 0 or window.last_error is not None, SCREENSHOT_TIMEOUT_S)
    if window.last_error is not None:
        raise window.last_error
    if not loaded:
        raise UserFacingError(f"The first frame was not decoded within {SCREENSHOT_TIMEOUT_S:.0f} s.", path=path)
    if window.device_probe is not None:
        _wait_until(app, lambda: window.device_probe.text is not None, DEVICE_PROBE_TIMEOUT_S)
    _wait_until(app, lambda: False, 0.2)  # let the layout and the status bar settle
    window.canvas.fit()
    app.processEvents()
    image = window.grab()
    if not image.save(out_png, "PNG"):
        raise UserFacingError("The screenshot could not be written (check the folder exists and is writable).", path=out_png)


def run_gui(args: argparse.Namespace) -> int:
    """Show the viewer (optionally with a file), or render ``--screenshot`` and exit."""
    if getattr(args, "debug", False):
        logging.basicConfig(level=logging.DEBUG)
    screenshot = getattr(args, "screenshot", None)
    path = getattr(args, "path", None)
    if screenshot:
        if not path:
            raise UserFacingError("--screenshot needs a file or folder to open.")
        # rendering needs no display; this also works on a machine without one
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    else:
        from tnseg_desktop.ui.platform_check import display_problem

        problem = display_problem()  # before the QApplication: Qt would abort instead of explaining
        if problem is not None:
            raise UserFacingError(problem)
    app = get_application()
    window = MainWindow()
    from tnseg_desktop.ui.editing_controller import attach_editing_for_app

    # a screenshot is a read-only render: it leaves the annotation store alone
    editing = attach_editing_for_app(window, with_store=not screenshot)
    try:
        if screenshot:
            render_screenshot(window, path, screenshot)
            return 0
        window.remember_layout = True
        if not restore_window_state(window, window.splitter):
            window.resize(DEFAULT_WINDOW_SIZE)
        window.show()
        if path:
            window.open_path(path)
        else:
            from tnseg_desktop.ui.welcome import show_welcome

            show_welcome(window)
        return int(app.exec())
    finally:
        window.shutdown()
        editing.shutdown()
        left = live_background_threads()
        if left:  # a thread inside torch at interpreter exit aborts the process
            log.warning("background threads still running at exit: %s", ", ".join(left))
