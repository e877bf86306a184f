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


def test_average_writes_the_mean_of_snapshots_and_refuses_mismatched_networks(tmp_path):
    import torch

    from tnseg_desktop.model.lite import TnsegLite
    from tnseg_desktop.model.lite_weights import load_lite, save_lite

    paths = []
    for seed in range(3):
        torch.manual_seed(seed)
        paths.append(save_lite(TnsegLite(base_channels=8, head_hidden=8, input_size=64), tmp_path / f"s{seed}.safetensors"))
    out = tmp_path / "mean.safetensors"
    done = _run("average", *map(str, paths), "--out", str(out))
    assert done.returncode == 0, done.stderr
    mean = load_lite(out).state_dict()
    parts = [load_lite(p).state_dict() for p in paths]
    for name in ("fgb.enc_blocks.0.weight", "head.0.in_layers.2.weight"):
        assert torch.allclose(mean[name], (parts[0][name] + parts[1][name] + parts[2][name]) / 3, atol=1e-6)
        assert not torch.allclose(mean[name], parts[0][name])
    wider = save_lite(TnsegLite(base_channels=16, head_hidden=8, input_size=64), tmp_path / "wide.safetensors")
    refused = _run("average", str(paths[0]), str(wider), "--out", str(tmp_path / "x.safetensors"))
    assert refused.returncode != 0 and not (tmp_path / "x.safetensors").exists()
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "wide.safetensors" in lines[0], refused.stderr
