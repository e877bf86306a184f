"""``tnseg-desktop models ...`` as a user runs it: exit codes and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tnseg_desktop.paths import REPO_ROOT


def _run(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "tnseg_desktop", "models", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_list_verify_and_a_bad_import(tmp_path):
    listed = _run("list")
    assert listed.returncode == 0, listed.stderr
    assert "clip-vit-b-16" in listed.stdout and "STATUS" in listed.stdout
    as_json = _run("list", "--json")
    assert as_json.returncode == 0
    rows = {r["name"]: r for r in json.loads(as_json.stdout)}
    assert rows["clip-tnseg"]["needs"] == ["clip-vit-b-16"] and rows["sam-vit-b"]["status"] in ("missing", "installed", "corrupt")
    verified = _run("verify")
    assert verified.returncode == 0, verified.stderr
    bogus = tmp_path / "not-a-model.pth"
    bogus.write_bytes(b"definitely not weights")
    bad = _run("import", str(bogus))
    assert bad.returncode != 0
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bogus) in lines[0], bad.stderr
    unnamed = _run("remove", "no-such-model")
    assert unnamed.returncode != 0 and len(unnamed.stderr.strip().splitlines()) == 1
