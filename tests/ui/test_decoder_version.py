"""The box tool follows the store's active decoder version (a retrained LiteMedSAM decoder), never silently."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tnseg_desktop.file_hash import sha256_of
from tnseg_desktop.model import litemedsam as lms
from tnseg_desktop.paths import user_models_dir
from tnseg_desktop.store import AnnotationStore
from tnseg_desktop.training import versions
from tnseg_desktop.training.litemedsam_finetune import save_decoder
from tnseg_desktop.ui.model_provider import HYBRID, ModelProvider

pytestmark = pytest.mark.skipif(versions.shipped_decoder() is None, reason="LiteMedSAM / litemedsam-thyroid not installed")


def _retrained_decoder(name: str) -> Path:
    """litemedsam-thyroid's decoder with its output head changed, saved as a user version would be."""
    model, sha = lms.load_litemedsam(decoder_path=versions.shipped_decoder())
    with torch.no_grad():
        for p in model.mask_decoder.output_hypernetworks_mlps.parameters():
            p.mul_(-1.0)
    path = user_models_dir() / f"{name}.safetensors"
    save_decoder(model, path, sha, {"test": "flipped output head"})
    return path


def _promote(store: AnnotationStore, name: str, path: Path) -> None:
    versions.ensure_base_decoder_version(store)
    store.record_model_version(name, file=str(path), sha256=sha256_of(path), parent=versions.DECODER_SHIPPED,
                               metrics={}, data_counts={}, last_edit_id=0, status="active", role="decoder")


def _box_mask(refiner, frame: np.ndarray) -> np.ndarray:
    from tnseg_desktop.engine.refiner_base import Prompts

    refiner.prepare(frame)
    return refiner.refine(frame, None, Prompts(box=(30, 35, 80, 90)))  # (row0, col0, row1, col1)


def test_the_hybrid_uses_the_promoted_decoder_and_keeps_its_embeddings(tmp_path):
    store = AnnotationStore(tmp_path / "store")
    provider = ModelProvider(device="cpu", store=store)
    first = provider.load("tnseg-lite", HYBRID)
    assert first.decoder_name == versions.DECODER_SHIPPED and not first.problems
    frame = (np.random.default_rng(0).random((120, 128)) * 255).astype(np.uint8)
    frame[40:70, 45:80] //= 4
    shipped_mask = _box_mask(first.refiner, frame)

    path = _retrained_decoder("litemedsam-thyroid-u1")
    _promote(store, "litemedsam-thyroid-u1", path)
    second = provider.load("tnseg-lite", HYBRID, reuse=first)
    assert second.decoder_name == "litemedsam-thyroid-u1" and second.decoder_file == str(path)
    assert second.refiner.box_refiner.decoder_file == str(path)
    assert second.refiner.box_refiner.cache is first.refiner.box_refiner.cache  # same encoder: embeddings kept
    assert not np.array_equal(_box_mask(second.refiner, frame), shipped_mask)

    third = provider.load("tnseg-lite", HYBRID, reuse=second)  # nothing changed: LiteMedSAM is not reloaded
    assert third.refiner.box_refiner is second.refiner.box_refiner
    store.close()


def test_a_damaged_decoder_version_is_reported_and_the_shipped_one_used(tmp_path):
    store = AnnotationStore(tmp_path / "store")
    path = _retrained_decoder("litemedsam-thyroid-u1")
    _promote(store, "litemedsam-thyroid-u1", path)
    with open(path, "r+b") as fh:
        fh.seek(-10, 2)
        fh.write(b"0123456789")
    loaded = ModelProvider(device="cpu", store=store).load("tnseg-lite", "litemedsam-thyroid")
    assert loaded.version_unusable
    assert any("litemedsam-thyroid-u1" in p and "shipped litemedsam-thyroid is used instead" in p for p in loaded.problems)
    assert loaded.decoder_name == versions.DECODER_SHIPPED
    assert loaded.refiner.decoder_file == str(versions.shipped_decoder())
    store.close()
