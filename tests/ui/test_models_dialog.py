"""The Models dialog on a registry written for the test: import (picker path and drop), refusal, offline download, remove."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from safetensors.torch import save_file

from tnseg_desktop.model.lite import TnsegLite
from tnseg_desktop.model.lite_weights import save_lite
from tnseg_desktop.file_hash import sha256_of
from tnseg_desktop.paths import user_models_dir
from tnseg_desktop.ui.models_dialog import ModelsDialog

WAIT_MS = 60_000


def _entry(name: str, file: str, path: Path | None, url: str | None = None) -> dict:
    return {
        "name": name, "title": f"Test {name}", "architecture": "test network", "file": file, "kind": "third-party",
        "size": path.stat().st_size if path else 123, "sha256": sha256_of(path) if path else "0" * 64,
        "licence": "Apache-2.0", "source": "written by the test", "url": url, "needs": [], "note": "",
    }


@pytest.fixture
def registry_dir(tmp_path, monkeypatch):
    """A shipped-models folder whose registry knows a random-weights file by its sha256."""
    weights = tmp_path / "incoming" / "test_net.safetensors"
    weights.parent.mkdir()
    torch.manual_seed(0)
    save_file({"conv.weight": torch.randn(8, 3, 3, 3), "conv.bias": torch.randn(8)}, str(weights))
    models = tmp_path / "models"
    models.mkdir()
    registry = {"version": 1, "models": [
        {**_entry("tnseg-lite", "tnseg-lite.safetensors", None), "kind": "shipped", "size": None, "sha256": None},
        _entry("test-net", "test_net.safetensors", weights),
        _entry("test-remote", "remote.pt", None, url="http://127.0.0.1:9/remote.pt"),
    ]}
    (models / "registry.json").write_text(json.dumps(registry))
    monkeypatch.setenv("TNSEG_SHIPPED_MODELS", str(models))
    return weights


@pytest.fixture
def dialog(qtbot, registry_dir):
    d = ModelsDialog()
    d.confirm_remove = False
    qtbot.addWidget(d)
    with qtbot.waitSignal(d.rows_loaded, timeout=WAIT_MS):
        d.show()
    yield d
    if d.task is not None:
        d.task.cancel()
        d.task.wait(10)


def _status(d: ModelsDialog, name: str) -> str:
    row = d.row(name)
    assert row is not None, [r.name for r in d.rows]
    return row.status


def _run(qtbot, d: ModelsDialog, start) -> tuple[bool, str]:
    with qtbot.waitSignal(d.rows_loaded, timeout=WAIT_MS):  # the list is re-read after every task
        with qtbot.waitSignal(d.task_finished, timeout=WAIT_MS) as finished:
            start()
        assert d.task is None
    return finished.args[0], finished.args[1]


def test_lists_each_entry_with_state_and_licence(dialog, registry_dir):
    assert _status(dialog, "test-net") == "missing"
    assert _status(dialog, "tnseg-lite") == "missing"
    assert dialog.row("test-net").licence == "Apache-2.0"
    dialog.select("test-net")
    assert "sha256" in dialog.details.text() and "Apache-2.0" in dialog.details.text()
    assert not dialog.download_button.isEnabled()  # no download address for this one


def test_imports_a_file_that_matches_the_registry(qtbot, dialog, registry_dir):
    ok, text = _run(qtbot, dialog, lambda: dialog.import_files([str(registry_dir)]))
    assert ok, text
    assert "checksum matches" in text
    installed = user_models_dir() / "test_net.safetensors"
    assert installed.is_file() and sha256_of(installed) == sha256_of(registry_dir)
    assert _status(dialog, "test-net") == "installed"
    dialog.select("test-net")
    assert dialog.remove_button.isEnabled()


def test_refuses_a_corrupt_file(qtbot, dialog, registry_dir):
    data = bytearray(registry_dir.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte changed
    registry_dir.write_bytes(bytes(data))
    ok, text = _run(qtbot, dialog, lambda: dialog.import_files([str(registry_dir)]))
    assert not ok
    assert "sha256" in text and "not installed" in text, text
    assert dialog.message.text() == text
    assert not (user_models_dir() / "test_net.safetensors").exists()
    assert not list(user_models_dir().glob(".import-*"))  # no temporary copy left behind
    assert _status(dialog, "test-net") == "missing"


def test_drop_imports_with_progress(qtbot, dialog, registry_dir):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(registry_dir))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)

    def drop():
        dialog.dropEvent(event)
        assert dialog.cancel_button.isVisibleTo(dialog) and not dialog.import_button.isEnabled()

    ok, text = _run(qtbot, dialog, drop)
    assert ok, text
    assert " of " in dialog.progress.format()  # the copy reported its progress (bytes done of total)
    assert _status(dialog, "test-net") == "installed"


def test_download_offline_says_so(qtbot, dialog, registry_dir):
    dialog.select("test-remote")
    assert dialog.download_button.isEnabled()
    ok, text = _run(qtbot, dialog, dialog.download_selected)
    assert not ok
    assert "not reachable" in text and "import it" in text, text


def test_remove_and_trained_versions(qtbot, dialog, registry_dir):
    _run(qtbot, dialog, lambda: dialog.import_files([str(registry_dir)]))
    save_lite(TnsegLite(base_channels=4, head_hidden=8, input_size=64), user_models_dir() / "my-retrained-v1.safetensors")
    with qtbot.waitSignal(dialog.rows_loaded, timeout=WAIT_MS):
        dialog.refresh()
    trained = dialog.row("my-retrained-v1")
    assert trained is not None and trained.kind == "user-trained" and trained.status == "installed"
    dialog.select("test-net")
    with qtbot.waitSignal(dialog.rows_loaded, timeout=WAIT_MS):
        dialog.remove_selected()
    assert not (user_models_dir() / "test_net.safetensors").exists()
    assert _status(dialog, "test-net") == "missing"


def test_cancel_stops_an_import_and_leaves_nothing(qtbot, dialog, registry_dir, tmp_path, monkeypatch):
    import tnseg_desktop.model.registry as registry

    monkeypatch.setattr(registry, "CHUNK", 1024)  # many small steps, so Cancel lands mid-copy
    big = tmp_path / "big.safetensors"
    big.write_bytes(b"\0" * (8 << 20))

    def start():
        dialog.import_files([str(big)])
        assert dialog.cancel_button.isVisibleTo(dialog)
        dialog.cancel_button.click()

    ok, text = _run(qtbot, dialog, start)
    assert not ok and text.startswith("Cancelled"), text
    assert not list(user_models_dir().glob(".import-*"))  # the partial copy was deleted
