"""Launching the window on a machine that cannot show it: one line that says why and what to install, never Qt's abort."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the xcb platform is Linux only")

HIDDEN = ("libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libxcb-cursor.so.0")


def _launch(env_changes: dict[str, str | None], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env.update({k: v for k, v in env_changes.items() if v is not None})
    return subprocess.run([sys.executable, "-m", "tnseg_desktop"], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)


def test_missing_xcb_libraries_are_named_with_the_apt_command(tmp_path: Path) -> None:
    # empty files earlier on the loader's path hide the real libraries: dlopen, and so Qt, cannot use them
    hide = tmp_path / "hidden-libs"
    hide.mkdir()
    for name in HIDDEN:
        (hide / name).write_bytes(b"")
    r = _launch({"DISPLAY": ":97", "LD_LIBRARY_PATH": f"{hide}:{os.environ.get('LD_LIBRARY_PATH', '')}"}, tmp_path)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    line = lines[0]
    assert line.startswith("tnseg-desktop: The window cannot open")
    for name in HIDDEN:
        assert name in line
    assert "sudo apt install libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1" in line


def test_no_display_at_all_says_so(tmp_path: Path) -> None:
    r = _launch({}, tmp_path)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "No graphical display was found" in lines[0] and "--screenshot" in lines[0]


def test_a_platform_qt_cannot_start_is_one_line_not_an_abort(tmp_path: Path) -> None:
    r = _launch({"QT_QPA_PLATFORM": "no-such-platform"}, tmp_path)
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tnseg-desktop: the window could not start") and "no-such-platform" in lines[0]
