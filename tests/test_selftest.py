"""``tnseg-desktop --self-test`` from a source install, run as a user would (a subprocess).

With the shipped models/tnseg-lite.safetensors when it exists; before it does,
with a tiny random tnseg-lite written into a temporary copy of models/ that
TNSEG_SHIPPED_MODELS points at (its registry entry gets that file's sha256).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tnseg_desktop.file_hash import sha256_of

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "models" / "tnseg-lite.safetensors"


def _models_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(REPO / "models" / "registry.json", folder / "registry.json")
    return folder


def _set_shipped_checksum(folder: Path) -> None:
    weights = folder / "tnseg-lite.safetensors"
    reg = json.loads((folder / "registry.json").read_text())
    for item in reg["models"]:
        if item["name"] == "tnseg-lite":
            item["size"], item["sha256"] = weights.stat().st_size, sha256_of(weights)
    (folder / "registry.json").write_text(json.dumps(reg, indent=2))


def _registry_sha256(folder: Path) -> str | None:
    reg = json.loads((folder / "registry.json").read_text())
    return next((m.get("sha256") for m in reg["models"] if m["name"] == "tnseg-lite"), None)


def _tiny_model_folder(tmp_path: Path) -> Path:
    from tnseg_desktop.model.lite import TnsegLite
    from tnseg_desktop.model.lite_weights import save_lite

    folder = _models_copy(tmp_path)
    save_lite(TnsegLite(base_channels=4, head_hidden=8, input_size=64), folder / "tnseg-lite.safetensors")
    _set_shipped_checksum(folder)
    return folder


def _run_self_test(env_extra: dict[str, str]) -> subprocess.CompletedProcess:
    env = {**os.environ, **env_extra, "QT_QPA_PLATFORM": "offscreen"}
    return subprocess.run([sys.executable, "-m", "tnseg_desktop", "--self-test"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)


def test_self_test_passes_from_source_install(tmp_path):
    env = {} if SHIPPED.is_file() else {"TNSEG_SHIPPED_MODELS": str(_tiny_model_folder(tmp_path))}
    result = _run_self_test(env)
    lines = result.stdout.strip().splitlines()
    assert result.returncode == 0, result.stdout + result.stderr
    assert lines[-1].startswith("PASS"), result.stdout
    for step in ("bundled sample", "shipped model", "segment", "refine with one click", "export PNG", "export DICOM SEG"):
        assert any(line.strip().startswith(f"ok  {step}:") for line in lines), (step, result.stdout)
    if env or _registry_sha256(REPO / "models"):
        assert "sha256 verified" in result.stdout


def test_self_test_fails_clearly_without_the_shipped_model(tmp_path):
    result = _run_self_test({"TNSEG_SHIPPED_MODELS": str(_models_copy(tmp_path))})
    assert result.returncode == 1
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("FAIL: shipped model: shipped model missing"), result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_self_test_refuses_a_damaged_shipped_model(tmp_path):
    folder = _tiny_model_folder(tmp_path)
    weights = folder / "tnseg-lite.safetensors"
    data = bytearray(weights.read_bytes())
    data[-100] ^= 0xFF  # same size, different content
    weights.write_bytes(bytes(data))
    result = _run_self_test({"TNSEG_SHIPPED_MODELS": str(folder)})
    assert result.returncode == 1
    assert "FAIL: shipped model: shipped model corrupt" in result.stdout, result.stdout
