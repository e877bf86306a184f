from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from tnseg_desktop.model import registry
from tnseg_desktop.file_hash import sha256_of
from tnseg_desktop.paths import REPO_ROOT, user_models_dir
from tests.model.test_safe_load import MarkerPayload


def _write_registry(folder: Path, models: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "registry.json").write_text(json.dumps({"version": 1, "models": models}))


def _entry(name: str, file: str, **extra) -> dict:
    base = {"name": name, "title": name, "architecture": "test", "file": file, "kind": "third-party", "licence": "MIT", "source": "tests"}
    return {**base, **extra}


@pytest.fixture()
def good_file(tmp_path) -> Path:
    path = tmp_path / "download" / "net.safetensors"
    path.parent.mkdir()
    save_file({"w": torch.randn(16, 8)}, path)
    return path


@pytest.fixture()
def temp_registry(tmp_path, monkeypatch, good_file) -> Path:
    shipped = tmp_path / "shipped"
    _write_registry(
        shipped,
        [
            _entry("test-net", "test-net.safetensors", size=good_file.stat().st_size, sha256=sha256_of(good_file)),
            _entry("test-nohash", "test-nohash.pth"),
            _entry("test-shipped", "test-shipped.safetensors", kind="shipped"),
        ],
    )
    monkeypatch.setenv("TNSEG_SHIPPED_MODELS", str(shipped))
    return shipped


def _user_files() -> list[str]:
    return sorted(p.name for p in user_models_dir().iterdir())


def test_import_by_checksum_then_verify_and_remove(temp_registry, good_file):
    assert registry.status("test-net") == registry.MISSING
    seen = []
    entry, path = registry.import_file(good_file, progress=lambda done, total: seen.append((done, total)))
    assert entry.name == "test-net" and path == user_models_dir() / "test-net.safetensors"
    assert seen and seen[-1][0] == seen[-1][1] == good_file.stat().st_size
    assert sha256_of(path) == sha256_of(good_file)
    assert registry.status("test-net", deep=True) == registry.INSTALLED
    assert registry.path_for("test-net") == path
    assert {r.name: r.status for r in registry.verify()}["test-net"] == registry.INSTALLED
    registry.remove("test-net")
    assert registry.status("test-net") == registry.MISSING
    with pytest.raises(registry.ModelNotInstalled):
        registry.path_for("test-net")


def test_tampered_file_is_refused_and_nothing_is_left(temp_registry, good_file, tmp_path):
    data = bytearray(good_file.read_bytes())
    data[-1] ^= 0xFF
    tampered = tmp_path / "tampered.safetensors"
    tampered.write_bytes(bytes(data))
    with pytest.raises(registry.ImportRefused, match="matches no known model"):
        registry.import_file(tampered)
    with pytest.raises(registry.ImportRefused, match="sha256") as info:
        registry.import_file(tampered, name="test-net")
    assert "\n" not in info.value.one_line()
    truncated = tmp_path / "short.safetensors"
    truncated.write_bytes(bytes(data[:-10]))
    with pytest.raises(registry.ImportRefused, match="bytes"):
        registry.import_file(truncated, name="test-net")
    assert _user_files() == []


def test_pickle_payload_is_refused_for_an_entry_without_checksum(temp_registry, tmp_path):
    marker = tmp_path / "ran.txt"
    evil = tmp_path / "evil.pth"
    torch.save({"w": torch.zeros(2), "x": MarkerPayload(marker)}, evil)
    with pytest.raises(registry.ImportRefused, match="pickled Python objects"):
        registry.import_file(evil, name="test-nohash")
    assert not marker.exists()
    assert _user_files() == []


def test_unhashed_entry_records_its_checksum_and_verify_finds_damage(temp_registry, tmp_path):
    weights = tmp_path / "weights.pth"
    torch.save({"w": torch.randn(4, 4)}, weights)
    _, installed = registry.import_file(weights, name="test-nohash")
    assert registry.status("test-nohash", deep=True) == registry.INSTALLED
    data = bytearray(installed.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, different content
    installed.write_bytes(bytes(data))
    assert registry.status("test-nohash", deep=True) == registry.CORRUPT
    assert {r.name: r.status for r in registry.verify()}["test-nohash"] == registry.CORRUPT


def test_unknown_names_and_missing_files(temp_registry, good_file):
    with pytest.raises(registry.UnknownModel):
        registry.import_file(good_file, name="no-such-model")
    with pytest.raises(registry.ImportRefused, match="not found"):
        registry.import_file(good_file.parent / "absent.pth")
    with pytest.raises(registry.RegistryError, match="cannot be removed"):
        registry.remove("test-shipped")


def test_user_trained_versions_are_listed(temp_registry):
    save_file({"w": torch.zeros(1)}, user_models_dir() / "my-lite-v2.safetensors", metadata={"arch": "tnseg-lite"})
    e = registry.load_registry()["my-lite-v2"]
    assert e.kind == "user-trained" and e.architecture == "tnseg-lite"
    assert registry.status("my-lite-v2") == registry.INSTALLED


def test_refresh_shipped_entry(temp_registry):
    save_file({"w": torch.ones(3)}, temp_registry / "test-shipped.safetensors")
    e = registry.refresh_shipped_entry("test-shipped")
    assert e.sha256 == sha256_of(temp_registry / "test-shipped.safetensors")
    assert registry.known_entries()["test-shipped"].size == (temp_registry / "test-shipped.safetensors").stat().st_size


def test_project_registry_is_complete():
    data = json.loads((REPO_ROOT / "models" / "registry.json").read_text())
    entries = {m["name"]: registry.ModelEntry.from_json(m) for m in data["models"]}
    assert len(entries) == len(data["models"])
    assert {"tnseg-lite", "clip-vit-b-16", "clip-tnseg", "sam-vit-b", "sam-vit-l", "sam-vit-h", "mobilesam"} <= set(entries)
    for e in entries.values():
        assert e.kind in registry.KINDS and e.file and e.licence and e.source
        assert e.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", e.sha256)
        assert all(n in entries for n in e.needs)
        if e.sha256 is None and e.kind == "third-party":
            assert "--name" in e.note  # no checksum: the note says how to import it
    assert entries["clip-tnseg"].needs == ("clip-vit-b-16",)
    assert entries["tnseg-lite"].kind == "shipped"
