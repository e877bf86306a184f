"""Window size, position and panel split, remembered between sessions (config folder, INI)."""

from __future__ import annotations

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMainWindow, QSplitter

from tnseg_desktop.paths import user_config_dir


def _settings() -> QSettings:
    return QSettings(str(user_config_dir() / "window.ini"), QSettings.Format.IniFormat)


def save_window_state(window: QMainWindow, splitter: QSplitter) -> None:
    s = _settings()
    s.setValue("main/geometry", window.saveGeometry())
    s.setValue("main/splitter", splitter.saveState())
    s.sync()


def restore_window_state(window: QMainWindow, splitter: QSplitter) -> bool:
    """Apply the saved layout; False when there is none (first start)."""
    s = _settings()
    geometry = s.value("main/geometry")
    split = s.value("main/splitter")
    if split is not None:
        splitter.restoreState(split)
    return bool(geometry is not None and window.restoreGeometry(geometry))
