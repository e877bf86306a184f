from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from tnseg_desktop.file_hash import sha256_of
from tnseg_desktop.model.safe_load import (
    UnsafeWeightsFile,
    WeightsFileError,
    WeightsHashMismatch,
    load_state_dict,
)


class MarkerPayload:
    """Unpickling this would create the marker file: a stand-in for code a malicious file runs."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _weights() -> dict[str, torch.Tensor]:
    return {"layer.weight": torch.randn(3, 2), "layer.bias": torch.randn(3)}


def test_safetensors_and_torch_save_load(tmp_path):
    w = _weights()
    save_file(w, tmp_path / "a.safetensors")
    torch.save(w, tmp_path / "b.pth")
    torch.save({"state_dict": {f"module.{k}": v for k, v in w.items()}, "epoch": 3}, tmp_path / "c.pth")
    for name in ("a.safetensors", "b.pth", "c.pth"):
        got = load_state_dict(tmp_path / name)
        assert set(got) == set(w) and all(torch.equal(got[k], w[k]) for k in w), name


def test_pickle_payload_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "ran.txt"
    bad = tmp_path / "evil.pth"
    torch.save({**_weights(), "extra": MarkerPayload(marker)}, bad)
    legacy = tmp_path / "evil_legacy.pkl"
    legacy.write_bytes(pickle.dumps({"w": MarkerPayload(marker)}))
    for path in (bad, legacy):
        with pytest.raises(UnsafeWeightsFile) as info:
            load_state_dict(path)
        assert "\n" not in info.value.one_line()
    assert not marker.exists()


def test_wrong_hash_is_refused_before_loading(tmp_path):
    marker = tmp_path / "ran.txt"
    bad = tmp_path / "evil.pth"
    torch.save({"extra": MarkerPayload(marker)}, bad)
    with pytest.raises(WeightsHashMismatch):
        load_state_dict(bad, expected_sha256="0" * 64)
    good = tmp_path / "good.pth"
    torch.save(_weights(), good)
    assert load_state_dict(good, expected_sha256=sha256_of(good))
    assert not marker.exists()


def test_torchscript_archive_tensors_read_without_running_code(tmp_path):
    module = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.LayerNorm(3)).half()
    traced = torch.jit.trace(module.float(), torch.zeros(1, 2)).half()
    path = tmp_path / "scripted.pt"
    traced.save(str(path))
    got = load_state_dict(path)
    ref = traced.state_dict()
    assert set(got) == set(ref)
    assert all(torch.equal(got[k], ref[k]) and got[k].dtype == ref[k].dtype for k in ref)


def test_torchscript_archive_with_foreign_object_is_refused(tmp_path):
    marker = tmp_path / "ran.txt"
    traced = torch.jit.trace(torch.nn.Linear(2, 2), torch.zeros(1, 2))
    src = tmp_path / "ok.pt"
    traced.save(str(src))
    bad = tmp_path / "evil.pt"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(bad, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item)
            if item.filename.endswith("/data.pkl"):
                data = pickle.dumps(MarkerPayload(marker), protocol=2)
            zout.writestr(item, data)
    with pytest.raises(UnsafeWeightsFile):
        load_state_dict(bad)
    assert not marker.exists()


def test_not_a_weights_file(tmp_path):
    junk = tmp_path / "notes.txt"
    junk.write_text("hello")
    with pytest.raises(WeightsFileError):
        load_state_dict(junk)
    with pytest.raises(WeightsFileError):
        load_state_dict(tmp_path / "absent.pth")


def test_openai_style_clip_archive_builds_open_clip(tmp_path):
    """A traced CLIP like OpenAI's ViT-B-16.pt: read safely, rebuilt as open_clip, same image features."""
    from tests.model.conftest import make_openai_style_clip
    from tnseg_desktop.model.clip_tnseg_predictor import load_openai_clip

    clip = make_openai_style_clip(vision_layers=2)
    path = tmp_path / "ViT-tiny.pt"
    image0, text0 = torch.ones(1, 3, 64, 64), torch.zeros(1, 77, dtype=torch.int)
    traced = torch.jit.trace_module(clip, {"forward": (image0, text0), "encode_text": (text0,), "encode_image": (image0,)}, check_trace=False)
    torch.jit.save(traced, str(path))
    loaded = load_openai_clip(path, expected_sha256=sha256_of(path))
    image = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(loaded.encode_image(image), clip.encode_image(image), atol=1e-5)
        tokens = torch.randint(1, 49000, (1, 77))
        assert torch.allclose(loaded.encode_text(tokens), clip.encode_text(tokens), atol=1e-5)
    assert not any(p.requires_grad for p in loaded.parameters())
