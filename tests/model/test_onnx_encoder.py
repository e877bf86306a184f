"""LiteMedSAM's image encoder exported to ONNX, on the real package weights and real ddti/val frames.

One export per module (into a temporary user data folder) and one more for the truncated-file case.
"""

from __future__ import annotations

import logging
import os
import shutil

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from tnseg_desktop.engine.embedding_cache import EmbeddingCache  # noqa: E402
from tnseg_desktop.engine.litemedsam_refiner import PRECISIONS, LiteMedSamRefiner, embedding_model_id  # noqa: E402
from tnseg_desktop.engine.refiner_base import Prompts  # noqa: E402
from tnseg_desktop.model import litemedsam as lms  # noqa: E402
from tnseg_desktop.model.onnx_encoder import OnnxEncoder, _checked_bytes, onnx_file_name  # noqa: E402
from tnseg_desktop.training.data import load_folder  # noqa: E402
from tnseg_desktop.training.metrics import dice  # noqa: E402

N_FRAMES = 3


@pytest.fixture(scope="module")
def real_model():
    torch.set_num_threads(1)
    return lms.load_litemedsam()


@pytest.fixture(scope="module")
def frames(shared_data):
    return load_folder(shared_data / "ddti" / "val")[:N_FRAMES]


@pytest.fixture(scope="module")
def exported(real_model, tmp_path_factory):
    """(data folder whose onnx/ holds the export, the encoder that exported it)."""
    model, sha = real_model
    data_dir = tmp_path_factory.mktemp("onnx-user-data")
    enc = OnnxEncoder(model.image_encoder, sha, lms.IMG_SIZE, threads=1, folder=data_dir / "onnx")
    report = enc.load()
    assert report.exported and not report.replaced_damaged
    assert report.path.name == onnx_file_name(sha) and sha in report.path.name and torch.__version__.split("+")[0] in report.path.name
    return data_dir, enc


def true_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(mask)
    return int(rows.min()), int(cols.min()), int(rows.max()) + 1, int(cols.max()) + 1


def test_the_onnx_embedding_of_a_real_frame_matches_fp32_eager(real_model, exported, frames):
    model, _ = real_model
    _, enc = exported
    x, _ = lms.preprocess(frames[0].image)
    with torch.inference_mode():
        ref = model.image_encoder(torch.from_numpy(x)[None])[0].numpy()
    got = enc(x)
    assert got.shape == (256, lms.EMBED_GRID, lms.EMBED_GRID) and got.dtype == np.float32
    assert np.linalg.norm(got - ref) / np.linalg.norm(ref) < 1e-4


def test_the_refiner_reuses_the_export_and_its_box_masks_match_fp32(real_model, exported, frames, monkeypatch):
    model, sha = real_model
    data_dir, enc = exported
    monkeypatch.setenv("TNSEG_DATA_DIR", str(data_dir))
    mtime = enc.report.path.stat().st_mtime_ns
    fp32 = LiteMedSamRefiner(model, weights_sha=sha, encoder_precision="fp32", cache=EmbeddingCache())
    onnx = LiteMedSamRefiner(model, weights_sha=sha, encoder_precision="onnx", cache=EmbeddingCache(), encoder_threads=1)
    scores = []
    for s in frames:
        box = Prompts(box=true_box(s.mask))
        scores.append(dice(onnx.refine(s.image, None, box), fp32.refine(s.image, None, box)))
    report = onnx.onnx_encoder().report
    assert report is not None and not report.exported and report.path == enc.report.path
    assert enc.report.path.stat().st_mtime_ns == mtime
    assert min(scores) >= 0.99, scores
    assert onnx.model_id != fp32.model_id


def test_each_backend_has_its_own_embedding_key():
    ids = {embedding_model_id("abc", p) for p in PRECISIONS}
    assert len(ids) == len(PRECISIONS) == 3


def test_a_file_with_other_bytes_of_the_same_size_is_not_trusted(exported, tmp_path):
    _, enc = exported
    copy = tmp_path / enc.report.path.name
    shutil.copy(enc.report.path, copy)
    shutil.copy(enc.report.path.with_name(enc.report.path.name + ".json"), tmp_path)
    assert _checked_bytes(copy) is not None
    with open(copy, "r+b") as fh:
        fh.seek(os.path.getsize(copy) // 2)
        byte = fh.read(1)
        fh.seek(-1, os.SEEK_CUR)
        fh.write(bytes([byte[0] ^ 0xFF]))
    assert _checked_bytes(copy) is None


def test_a_truncated_cached_file_is_exported_again(real_model, exported, frames, caplog):
    model, sha = real_model
    _, enc = exported
    path = enc.report.path
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        fh.truncate(size // 3)
    again = OnnxEncoder(model.image_encoder, sha, lms.IMG_SIZE, threads=1, folder=path.parent)
    with caplog.at_level(logging.INFO, logger="tnseg_desktop.model.onnx_encoder"):
        report = again.load()
    assert report.exported and report.replaced_damaged
    assert "damaged or partial" in caplog.text and "one-time export took" in caplog.text
    assert path.stat().st_size == size
    x, _ = lms.preprocess(frames[0].image)
    assert np.allclose(again(x), enc(x), atol=1e-5)
