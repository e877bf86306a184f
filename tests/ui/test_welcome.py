"""The welcome screen: open sample, recent files, model status, Help › Models, and its README screenshot.

``TNSEG_UPDATE_SCREENSHOTS=1`` also writes resources/screenshots/welcome.png.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import QSize

from tnseg_desktop.model.lite import TnsegLite
from tnseg_desktop.model.lite_weights import save_lite
from tnseg_desktop.file_hash import sha256_of
from tnseg_desktop.ui import recent_files
from tnseg_desktop.ui.models_dialog import ModelsDialog
from tnseg_desktop.ui.welcome import WelcomeScreen, sample_path, show_welcome

REPO = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO / "resources" / "screenshots" / "welcome.png"
WAIT_MS = 60_000


@pytest.fixture
def installed_models(tmp_path, monkeypatch):
    """A copy of models/ with a tiny tnseg-lite in place of the shipped weights, so the status reads 'ready'."""
    folder = tmp_path / "models"
    folder.mkdir()
    weights = folder / "tnseg-lite.safetensors"
    save_lite(TnsegLite(base_channels=4, head_hidden=8, input_size=64), weights)
    reg = json.loads((REPO / "models" / "registry.json").read_text())
    for item in reg["models"]:
        if item["name"] == "tnseg-lite":
            item["size"], item["sha256"] = weights.stat().st_size, sha256_of(weights)
    (folder / "registry.json").write_text(json.dumps(reg))
    monkeypatch.setenv("TNSEG_SHIPPED_MODELS", str(folder))
    return folder


@pytest.fixture
def missing_models(tmp_path, monkeypatch):
    folder = tmp_path / "empty-models"
    folder.mkdir()
    shutil.copy(REPO / "models" / "registry.json", folder / "registry.json")
    monkeypatch.setenv("TNSEG_SHIPPED_MODELS", str(folder))
    return folder


def _welcome(qtbot, window) -> WelcomeScreen:
    welcome = show_welcome(window)
    qtbot.waitUntil(lambda: welcome.lines is not None, timeout=WAIT_MS)
    return welcome


def test_open_sample_shows_the_bundled_cine(qtbot, make_window, installed_models):
    window = make_window()
    welcome = _welcome(qtbot, window)
    assert window.view_stack.currentWidget() is welcome
    assert welcome.sample_button.isEnabled() and sample_path().is_file()
    with qtbot.waitSignal(window.source_opened, timeout=WAIT_MS) as opened:
        welcome.sample_button.click()
    assert opened.args[0] == str(sample_path())
    assert window.view_stack.currentWidget() is window.canvas
    assert window.meta.frames == 12 and window.meta.calibrated
    assert recent_files.load_recent()[0] == os.path.abspath(sample_path())


def test_recent_files_open_from_the_list(qtbot, make_window, installed_models):
    recent_files.save_recent([str(sample_path()), "/nowhere/old_loop.dcm"])
    window = make_window()
    welcome = _welcome(qtbot, window)
    assert welcome.recent_list.count() == 2 and not welcome.recent_empty.isVisibleTo(welcome)
    with qtbot.waitSignal(welcome.open_recent_requested) as asked:
        welcome.recent_list.itemClicked.emit(welcome.recent_list.item(0))
    assert asked.args[0] == str(sample_path())


def test_model_status_lines(qtbot, make_window, installed_models):
    welcome = _welcome(qtbot, make_window())
    states = {line.name: line.state for line in welcome.lines}
    assert states["tnseg-lite"] == "ready"
    assert states["mobilesam"] == "not installed (optional)"


def test_missing_shipped_model_is_said_plainly(qtbot, make_window, missing_models):
    welcome = _welcome(qtbot, make_window())
    states = {line.name: line.state for line in welcome.lines}
    assert states["tnseg-lite"].startswith("missing")
    recent_files.save_recent([])
    welcome.refresh()
    assert welcome.recent_empty.isVisibleTo(welcome)


def test_help_models_opens_the_dialog_and_refreshes_the_welcome(qtbot, make_window, installed_models):
    window = make_window()
    welcome = _welcome(qtbot, window)
    help_menu = next(a.menu() for a in window.menuBar().actions() if a.text().replace("&", "") == "Help")
    assert window.act_models in help_menu.actions()
    window.act_models.trigger()
    dialog = window.models_dialog
    assert isinstance(dialog, ModelsDialog)
    qtbot.waitUntil(lambda: bool(dialog.rows), timeout=WAIT_MS)
    welcome.lines = None
    dialog.accept()
    qtbot.waitUntil(lambda: welcome.lines is not None, timeout=WAIT_MS)


@pytest.fixture
def themed_app(qapp):
    """The app's real dark theme for the screenshot, put back afterwards for the other GUI tests."""
    from tnseg_desktop.ui.theme import apply_theme

    saved = (qapp.style().name(), qapp.palette(), qapp.styleSheet())
    apply_theme(qapp)
    yield qapp
    qapp.setStyle(saved[0])
    qapp.setPalette(saved[1])
    qapp.setStyleSheet(saved[2])


def test_welcome_screenshot(qtbot, themed_app, make_window, installed_models, tmp_path):
    recent_files.save_recent([str(sample_path()), "/data/ultrasound/2024-03-12/thyroid_right_transverse.dcm",
                              "/data/ultrasound/2024-03-12/thyroid_right_longitudinal.dcm"])
    window = make_window()
    window.resize(QSize(1280, 800))
    _welcome(qtbot, window)
    qtbot.wait(100)
    out = tmp_path / "welcome.png"
    assert window.grab().save(str(out), "PNG")
    assert out.stat().st_size > 10_000
    if os.environ.get("TNSEG_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(out, SCREENSHOT)
