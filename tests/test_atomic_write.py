"""The one atomic writer: whole new file or the old one, never a half-written one, and no temp file left."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tnseg_desktop import atomic_write
from tnseg_desktop.atomic_write import atomic_path, atomic_write_bytes, atomic_write_text


def _leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.endswith(atomic_write.TEMP_SUFFIX)]


def test_write_creates_folders_and_replaces_whole(tmp_path):
    target = tmp_path / "a" / "b" / "f.json"
    atomic_write_text(target, "first")
    assert target.read_text(encoding="utf-8") == "first"
    atomic_write_bytes(target, b"second, longer than the first")
    assert target.read_bytes() == b"second, longer than the first"
    assert _leftovers(target.parent) == []


def test_a_failing_writer_leaves_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "weights.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("disk full")
    assert target.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


def test_temp_file_is_beside_the_target_and_named_after_it(tmp_path):
    target = tmp_path / "job.json"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".job.json.")
        assert not target.exists()  # nothing is visible under the real name until the end
        tmp.write_text("{}")
    assert target.read_text() == "{}"


def test_file_and_folder_are_fsynced_before_and_after_the_rename(tmp_path, monkeypatch):
    events: list[str] = []
    real_replace = os.replace
    monkeypatch.setattr(atomic_write, "fsync_file", lambda p: events.append(f"file {Path(p).name}"))
    monkeypatch.setattr(atomic_write, "fsync_dir", lambda d: events.append(f"dir {Path(d).name}"))
    monkeypatch.setattr(atomic_write.os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b)))
    atomic_write_bytes(tmp_path / "x", b"1")
    # the temp file is synced before it takes the name, the folder after
    assert len(events) == 3 and events[0].startswith("file .x.")
    assert events[1:] == ["replace", f"dir {tmp_path.name}"]
    assert (tmp_path / "x").read_bytes() == b"1"


@pytest.mark.skipif(os.name == "nt", reason="POSIX permission bits")
def test_mode_sets_permissions(tmp_path):
    private = atomic_write_bytes(tmp_path / "p", b"1")
    shared = atomic_write_bytes(tmp_path / "s", b"1", mode=0o644)
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE(shared.stat().st_mode) == 0o644
