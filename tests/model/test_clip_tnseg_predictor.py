from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tnseg_desktop.model.clip_tnseg import ClipTnseg
from tnseg_desktop.model.clip_tnseg_checkpoint import save_checkpoint
from tnseg_desktop.model.clip_tnseg_predictor import (
    ClipTnsegPredictor,
    ClipTnsegWeightsMissing,
    ClipWeightsMissing,
    load_clip_tnseg_predictor,
)
from tnseg_desktop.file_hash import sha256_of
from tnseg_desktop.paths import REPO_ROOT, user_models_dir


def _frames() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (50, 70), dtype=np.uint8), rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)]


def test_probabilities_at_frame_resolution_and_prompts_matter(tiny_model):
    predictor = ClipTnsegPredictor(tiny_model, "cpu", low_precision=False)
    frames = _frames()
    probs = predictor.auto_probs(frames)
    assert [p.shape for p in probs] == [f.shape[:2] for f in frames]
    assert all(p.dtype == np.float32 and 0.0 <= p.min() and p.max() <= 1.0 for p in probs)
    a = predictor.prob_map(frames[0], "thyroid nodule")
    b = predictor.prob_map(frames[0], "a photo of a dog")
    assert np.abs(a - b).max() > 1e-5
    assert np.allclose(a, probs[0], atol=1e-6)  # default prompt is "thyroid nodule"


def test_missing_clip_file_is_one_sentence():
    with pytest.raises(ClipWeightsMissing) as info:
        load_clip_tnseg_predictor("cpu")
    line = info.value.one_line()
    assert line.startswith("CLIP ViT-B-16 weights are not installed") and "tnseg-desktop models import ViT-B-16.pt" in line


def test_end_to_end_from_installed_files(tmp_path, monkeypatch):
    """A traced tiny CLIP stands in for OpenAI's ViT-B-16.pt; a saved checkpoint for the trained model."""
    from tests.model.conftest import make_openai_style_clip

    clip = make_openai_style_clip(vision_layers=10)
    image0, text0 = torch.ones(1, 3, 64, 64), torch.zeros(1, 77, dtype=torch.int)
    traced = torch.jit.trace_module(clip, {"forward": (image0, text0), "encode_text": (text0,), "encode_image": (image0,)}, check_trace=False)
    clip_file = user_models_dir() / "ViT-B-16.pt"
    torch.jit.save(traced, str(clip_file))

    shipped = tmp_path / "shipped"
    shipped.mkdir()
    data = json.loads((REPO_ROOT / "models" / "registry.json").read_text())
    for m in data["models"]:
        if m["name"] == "clip-vit-b-16":
            m["sha256"] = sha256_of(clip_file)
    (shipped / "registry.json").write_text(json.dumps(data))
    monkeypatch.setenv("TNSEG_SHIPPED_MODELS", str(shipped))

    with pytest.raises(ClipTnsegWeightsMissing, match="--name clip-tnseg"):
        load_clip_tnseg_predictor("cpu")

    torch.manual_seed(2)
    trained = ClipTnseg(clip)
    save_checkpoint(trained, user_models_dir() / "clip-tnseg.pth")  # content decides the format, not the suffix
    predictor = load_clip_tnseg_predictor("cpu", prompt="thyroid nodule")
    predictor.low_precision = False
    predictor.size = 64  # tiny input keeps the test fast; the network itself is unchanged
    trained.eval()
    frame = _frames()[0]
    got = predictor.prob_map(frame)
    want = ClipTnsegPredictor(trained, "cpu", low_precision=False)
    want.size = 64
    assert np.allclose(got, want.prob_map(frame), atol=1e-4)
