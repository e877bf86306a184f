"""Accepting a frame writes its retraining views in the background: the real LiteMedSAM refiner, a real ddti frame,
a real store; the files are the ones the retraining worker reads, and they wait for the model work to finish."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from tnseg_desktop.store import AnnotationStore
from tnseg_desktop.training import retrain
from tnseg_desktop.training.data import read_gray
from tnseg_desktop.training.embedding_views import build_views
from tnseg_desktop.training.job import frame_key, is_validation_frame
from tnseg_desktop.training.job_data import FrameLoader
from tnseg_desktop.ui.editing_controller import attach_editing
from tnseg_desktop.ui.model_provider import FixedModels


@pytest.fixture(scope="module")
def litemedsam_refiner():
    from tnseg_desktop.engine.litemedsam_refiner import LiteMedSamRefiner
    from tnseg_desktop.model import litemedsam as lms

    torch.set_num_threads(1)
    try:
        model, sha = lms.load_litemedsam()
    except lms.LiteMedSamUnavailable as exc:
        pytest.skip(str(exc))
    return LiteMedSamRefiner(model, weights_sha=sha, encoder_precision="bf16")


def _npz(folder) -> list:
    return sorted(folder.rglob("*.npz")) if folder.is_dir() else []


def test_accepting_a_frame_writes_its_views_in_the_background_after_the_model_work(
        make_window, qtbot, tmp_path, monkeypatch, shared_data, litemedsam_refiner):
    cache = tmp_path / "views"
    monkeypatch.setenv("TNSEG_VIEW_CACHE", str(cache))
    image_path = sorted((shared_data / "ddti" / "val" / "images").glob("*.png"))[2]
    truth = read_gray(shared_data / "ddti" / "val" / "masks" / image_path.name) > 127
    store = AnnotationStore(tmp_path / "store")
    window = make_window()
    ctl = attach_editing(window, provider=FixedModels(refiner=litemedsam_refiner, refiner_name="litemedsam"),
                         store=store, ask_recovery=False)
    window.close_guards.remove(ctl.confirm_close)
    qtbot.waitUntil(lambda: ctl.models.refiner is not None, timeout=10_000)
    window.open_path(str(image_path))
    qtbot.waitUntil(lambda: window.displayed_index == 0 and ctl.study_id is not None, timeout=10_000)
    rows, cols = np.nonzero(truth)
    ctl.tool_paint([(int(rows.mean()), int(cols.mean()))], 12, False, "stroke-1")

    # the model worker is busy (a click in progress, say): the views must wait for it
    release = threading.Event()
    ctl.model_worker.submit(lambda job: release.wait(60), name="held click")
    hits = litemedsam_refiner.cache.stats.hits
    with qtbot.waitSignal(ctl.accepted, timeout=10_000):
        ctl.accept()
        assert _npz(cache) == []  # accept returned before anything was encoded
    qtbot.wait(1500)
    assert _npz(cache) == [], "views were encoded while the model worker had work"
    release.set()
    [accepted] = store.accepted_frames()
    key = frame_key(store.study(accepted.study_id).content_hash, 0)
    k = 1 if is_validation_frame(key) else retrain.RetrainSettings().decoder_views
    qtbot.waitUntil(lambda: ctl.accept_views.frames_done == 1, timeout=120_000)
    written = _npz(cache)
    assert len(written) == k
    assert litemedsam_refiner.cache.stats.hits > hits  # view 0 came from the embedding the precompute made

    # exactly the files the worker finds for this job frame, read its own way (source decoded again, stored mask)
    sample = FrameLoader().load(retrain._store_ref(store, accepted, key, "user"))
    listed = build_views([(sample.id, sample.image, sample.mask)], k, cache, None, litemedsam_refiner.weights_sha,
                         ctl.retrain_settings.decoder_precision, compute_missing=False)
    assert sorted(listed[0]) == written
    thread = ctl.accept_views._thread
    ctl.shutdown()
    assert thread is not None and not thread.is_alive()
