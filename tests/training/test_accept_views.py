"""An accepted frame's retraining views, written ahead of the run: the worker's own files, view 0 from the refiner's
cached embedding. Real LiteMedSAM, a real ddti/val frame and its mask, a real store."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from torch import nn

from tnseg_desktop.engine.litemedsam_refiner import LiteMedSamRefiner
from tnseg_desktop.engine.view_regions import ViewConfinedRefiner, views_from_bounds
from tnseg_desktop.io import open_source
from tnseg_desktop.model import litemedsam as lms
from tnseg_desktop.store import AnnotationStore, EditInfo
from tnseg_desktop.training import retrain
from tnseg_desktop.training.accept_views import cached_plain_embedding, encoder_of, write_accept_views, write_accepted_frame_views
from tnseg_desktop.training.data import Sample, load_folder
from tnseg_desktop.training.embedding_views import ViewSpec, build_views, load_view, make_view
from tnseg_desktop.training.job import frame_key, is_validation_frame
from tnseg_desktop.training.job_data import FrameLoader


@pytest.fixture(scope="module")
def litemedsam():
    torch.set_num_threads(1)
    try:
        return lms.load_litemedsam()
    except lms.LiteMedSamUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def ddti(shared_data) -> Sample:
    return load_folder(shared_data / "ddti" / "val")[0]


class NoEncoder(nn.Module):
    """Fails when asked for an encoder pass: a run that needs none found every view in the cache."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise AssertionError("an encoder pass was made although the views were cached")


class Counting(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.inner(x)


def test_the_views_written_are_the_ones_the_worker_lists_and_needs_no_encoder_for(tmp_path, litemedsam, ddti):
    model, sha = litemedsam
    paths = write_accept_views(ddti.image, ddti.mask, None, model.image_encoder, sha, tmp_path, "bf16", k=2, sample_id=ddti.id)
    assert len(paths) == 2 and all(p.is_file() for p in paths)
    item = [(ddti.id, ddti.image, ddti.mask)]
    assert build_views(item, 2, tmp_path, NoEncoder(), sha, "bf16", compute_missing=False) == [paths]
    assert build_views(item, 2, tmp_path, NoEncoder(), sha, "bf16") == [paths]
    plain, mirrored = (load_view(p) for p in paths)
    assert plain.hw == mirrored.hw and plain.mask.any() and mirrored.mask.any()
    assert not np.array_equal(plain.embedding, mirrored.embedding)


def test_view_0_from_the_refiners_cached_embedding_equals_the_one_make_view_computes(tmp_path, litemedsam, ddti):
    model, sha = litemedsam
    refiner = LiteMedSamRefiner(model, weights_sha=sha, encoder_precision="bf16")
    refiner.prepare(ddti.image)  # what the app's precompute does for the frame on screen
    embedding = cached_plain_embedding(refiner.cache, ddti.image, sha, "bf16")
    assert embedding is not None
    assert cached_plain_embedding(refiner.cache, ddti.image, sha, "fp32") is None  # another precision, another embedding
    counting = Counting(model.image_encoder)
    paths = write_accept_views(ddti.image, ddti.mask, embedding, counting, sha, tmp_path, "bf16", k=2)
    assert counting.calls == 1  # the mirror only
    written = load_view(paths[0])
    expected = make_view(model.image_encoder, ddti.image, ddti.mask, ViewSpec(), "bf16")
    assert written.hw == expected.hw
    assert np.array_equal(written.image, expected.image) and np.array_equal(written.mask, expected.mask)
    assert written.embedding.dtype == np.float16
    np.testing.assert_allclose(written.embedding.astype(np.float32), expected.embedding.astype(np.float32), atol=2e-2)


def _training_frame_study(tmp_path, shared_data, ddti: Sample) -> tuple[AnnotationStore, int, str]:
    """A store whose one study is the ddti frame's PNG; its content hash makes it a training (not held-out) frame."""
    folder = tmp_path / "cine"
    folder.mkdir()
    shutil.copy(shared_data / "ddti" / "val" / "images" / f"{ddti.id}.png", folder / "frame000.png")
    store = AnnotationStore(tmp_path / "store")
    digest = next(f"ddti-test-{i}" for i in range(100) if not is_validation_frame(frame_key(f"ddti-test-{i}", 0)))
    return store, store.add_study(open_source(folder).meta, digest), digest


def test_an_accepted_store_frame_gets_the_views_the_worker_reads_and_the_estimate_drops_them(tmp_path, monkeypatch,
                                                                                              shared_data, litemedsam, ddti):
    model, sha = litemedsam
    cache = tmp_path / "views"
    monkeypatch.setenv("TNSEG_VIEW_CACHE", str(cache))
    store, study_id, digest = _training_frame_study(tmp_path, shared_data, ddti)
    accepted = store.accept(study_id, 0, ddti.mask, edit_info=EditInfo(tool="box"))
    settings = retrain.RetrainSettings()
    k = settings.decoder_views
    key = lambda a: frame_key(digest, a.frame_index)  # noqa: E731
    assert retrain._views_to_encode(store, [accepted], k, key, settings.decoder_precision) == k

    refiner = LiteMedSamRefiner(model, weights_sha=sha, encoder_precision="bf16")
    views = views_from_bounds([[0, 0, 280, 360], [280, 0, 560, 360]], ddti.image.shape)
    encoder = encoder_of(ViewConfinedRefiner(refiner, views))  # the stock encoder is found inside the wrapper
    assert encoder is not None and encoder.weights_sha == sha and encoder.cache is refiner.cache
    frame = open_source(tmp_path / "cine").frame(0)  # what the app's session holds for the frame
    paths = write_accepted_frame_views(store, accepted, frame, encoder, settings, cache)
    assert len(paths) == k and all(p.is_file() for p in paths)

    # the worker's own reading of the job's frame: the source decoded again and the stored mask
    ref = retrain._store_ref(store, accepted, key(accepted), "user")
    sample = FrameLoader().load(ref)
    assert build_views([(sample.id, sample.image, sample.mask)], k, cache, NoEncoder(), sha, settings.decoder_precision) == [paths]
    assert retrain._views_to_encode(store, [accepted], k, key, settings.decoder_precision) == 0
    store.close()


def test_the_jobs_decoder_part_carries_the_settings_precision():
    from tnseg_desktop.training.job import DecoderPart

    part = DecoderPart("a", "a.safetensors", "b", "b.safetensors", "/cache", views=2, precision="fp32")
    back = DecoderPart.from_json(part.to_json())
    assert back.precision == "fp32" and back.views == 2
    assert DecoderPart.from_json({k: v for k, v in part.to_json().items() if k != "precision"}).precision == "bf16"


def test_the_estimate_takes_seconds_per_view_only_from_a_run_that_counted_the_views_it_encoded(tmp_path):
    store = AnnotationStore(tmp_path / "store")
    weights = tmp_path / "d.safetensors"
    weights.write_bytes(b"x")
    for name, timing in (("d-u1", {"seconds_per_step": 3.0, "seconds_per_view": 0.05}),  # over cache hits too: not used
                         ("d-u2", {"seconds_per_step": 5.0, "views_made": 0})):  # encoded nothing: no figure
        store.record_model_version(name, file=str(weights), sha256="0" * 64, metrics={"timing": timing}, data_counts={},
                                   last_edit_id=0, status="rejected", role="decoder")
    assert retrain._measured_speeds(store) == (retrain.SECONDS_PER_VIEW, 5.0)
    store.record_model_version("d-u3", file=str(weights), sha256="0" * 64, data_counts={}, last_edit_id=0, status="rejected",
                               role="decoder", metrics={"timing": {"seconds_per_step": 4.0, "views_made": 6, "seconds_per_view": 1.7}})
    assert retrain._measured_speeds(store) == (1.7, 4.0)
    store.close()
