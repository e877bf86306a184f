"""Settings inside a weights file are checked before a network is built."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file

from tnseg_desktop import cli
from tnseg_desktop.errors import UserFacingError
from tnseg_desktop.model.lite_weights import load_lite, read_metadata
from tnseg_desktop.paths import shipped_models_dir


def _resave(tmp_path: Path, name: str, **config_changes) -> Path:
    src = shipped_models_dir() / "tnseg-lite.safetensors"
    meta = read_metadata(src)
    config = {**meta["config"], **config_changes}
    out = tmp_path / name
    save_file(load_file(str(src)), str(out), metadata={"arch": "tnseg-lite", "config": json.dumps(config), "info": "{}"})
    return out


@pytest.mark.parametrize("change, word", [
    ({"input_size": 4096}, "input_size"),
    ({"input_size": 100}, "input_size"),
    ({"base_channels": 512}, "base_channels"),
    ({"channel_mults": [1] * 40}, "channel_mults"),
    ({"head_hidden": -3}, "head_hidden"),
])
def test_out_of_range_settings_are_refused_before_building(tmp_path: Path, change: dict, word: str) -> None:
    path = _resave(tmp_path, "odd.safetensors", **change)
    t0 = time.perf_counter()
    with pytest.raises(UserFacingError, match=word):
        load_lite(path)
    assert time.perf_counter() - t0 < 2.0


def test_a_tiny_file_claiming_a_huge_network_costs_nothing(tmp_path: Path, capsys) -> None:
    path = tmp_path / "tiny.safetensors"
    save_file({}, str(path), metadata={"arch": "tnseg-lite", "config": json.dumps({"base_channels": 512}), "info": "{}"})
    assert path.stat().st_size < 300
    img = tmp_path / "f.png"
    import cv2
    import numpy as np

    cv2.imwrite(str(img), np.full((64, 64), 120, np.uint8))
    t0 = time.perf_counter()
    code = cli.main(["segment", str(img), "--out", str(tmp_path / "out"), "--model", str(path), "--device", "cpu"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "base_channels" in err[0] and str(path) in err[0]
    assert time.perf_counter() - t0 < 5.0


def test_the_shipped_settings_still_load() -> None:
    model = load_lite(shipped_models_dir() / "tnseg-lite.safetensors")
    assert model.input_size == 160
