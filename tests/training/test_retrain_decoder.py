"""Retraining both parts: tnseg-lite (automatic mask) and LiteMedSAM's decoder (box tool), each gated on its own.

Real store, real worker process, the real LiteMedSAM encoder and shipped litemedsam-thyroid decoder.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from retrain_support import add_study, fast_settings, store_with_edits

from tnseg_desktop.model import litemedsam as lms
from tnseg_desktop.store import AnnotationStore, EditInfo
from tnseg_desktop.training import retrain, versions
from tnseg_desktop.training.data import load_folder

pytestmark = pytest.mark.skipif(versions.shipped_decoder() is None, reason="LiteMedSAM / litemedsam-thyroid not installed")


def _busi_store(root: Path, shared_data: Path, names: list[str]) -> AnnotationStore:
    """busi_dev frames (one cine per frame size) accepted with their true masks as box edits, a tiny auto base."""
    from retrain_support import tiny_model

    from tnseg_desktop.model.lite_weights import save_lite

    samples = {s.id: s for s in load_folder(shared_data / "busi_dev")}
    store = AnnotationStore(root / "store")
    by_shape: dict[tuple[int, int], list] = {}
    for n in names:
        by_shape.setdefault(samples[n].image.shape, []).append(samples[n])
    for k, (shape, members) in enumerate(sorted(by_shape.items())):
        folder = root / f"cine{k}"
        folder.mkdir()
        for i, s in enumerate(members):
            cv2.imwrite(str(folder / f"frame{i:03d}.png"), s.image)
        sid, _ = add_study(store, folder)
        for i, s in enumerate(members):
            store.accept(sid, i, s.mask, edit_info=EditInfo(tool="box"))
    base = save_lite(tiny_model(), root / "base.safetensors", {"note": "tiny test base"})
    versions.ensure_base_version(store, "tiny-base", base)
    return store


BUSI = [f"busi_benign_{i}" for i in range(1, 9)] + [f"busi_malignant_{i}" for i in range(1, 5)]


def test_a_run_on_busi_frames_writes_a_version_for_each_part(tmp_path, shared_data):
    store = _busi_store(tmp_path, shared_data, BUSI)
    settings = fast_settings(decoder=True, decoder_steps=4, decoder_lr=1e-5, decoder_views=1, min_new_frames=5)
    plan = retrain.plan_retrain(store, settings)
    assert plan.ready, plan.reason
    assert plan.decoder_base is not None and plan.decoder_base[0] == versions.DECODER_SHIPPED
    assert plan.decoder_minutes > 0  # the estimate counts the decoder
    events: list[dict] = []
    result = retrain.retrain(store, settings, on_event=events.append)
    assert result.status in ("promoted", "rejected"), result.message
    dec = result.decoder_version
    assert dec is not None, result.decoder_message
    assert dec.role == "decoder" and dec.parent_name == versions.DECODER_SHIPPED
    assert {v.name for v in store.list_model_versions("decoder")} == {versions.DECODER_SHIPPED, dec.name}
    assert {v.name for v in store.list_model_versions("auto")} == {"tiny-base", result.version.name}
    m = dec.metrics
    assert m["before"]["val_user"]["n"] >= 1 and 0.0 <= m["after"]["val_user"]["dice"] <= 1.0
    assert m["timing"]["seconds_per_step"] > 0
    # the decoder steps were reported with a loss, and the saved file is a decoder LiteMedSAM accepts
    losses = [e["loss"] for e in events if e.get("event") == "step" and e.get("part") == "decoder"]
    assert len(losses) == 4 and all(np.isfinite(losses))
    model, _ = lms.load_litemedsam()
    shipped = lms.decoder_state(model)
    lms.load_decoder_parts(model, Path(dec.file))
    changed = [k for k, v in lms.decoder_state(model).items() if not np.allclose(v.numpy(), shipped[k].numpy())]
    assert changed, "the retrained decoder equals the shipped one"
    # the embeddings stay cached: a second plan does not need them again (the worker reads them from the view cache)
    from tnseg_desktop.paths import view_cache_dir

    assert len(list(view_cache_dir().rglob("*.npz"))) >= len(BUSI)


def test_a_worse_decoder_is_refused_while_the_better_auto_mask_is_promoted(tmp_path):
    # synthetic frames teach the tiny tnseg-lite well; a learning rate of 1.0 wrecks the decoder
    store, _ = store_with_edits(tmp_path, n=24)
    result = retrain.retrain(store, fast_settings(decoder=True, decoder_steps=3, decoder_lr=1.0, decoder_views=1))
    assert result.status == "promoted", result.message
    assert store.active_model_version().name == result.version.name
    dec = result.decoder_version
    assert dec is not None and dec.status == "rejected", result.decoder_message
    assert not result.decoder_promoted and "did not improve" in result.decoder_decision.reason
    assert store.active_model_version("decoder").name == versions.DECODER_SHIPPED
    assert versions.active_decoder(store)[0] == versions.DECODER_SHIPPED
    assert "Box tool" in result.decoder_message and "not used" in result.decoder_message
