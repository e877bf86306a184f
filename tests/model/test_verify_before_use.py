"""A model file that fails its check is never used: not by segment, not as a retraining base, not in the GUI."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.training.retrain_support import synthetic_frame, tiny_model, write_cine_folder, add_study, accept_all
from tnseg_desktop import cli
from tnseg_desktop.file_hash import sha256_of
from tnseg_desktop.model import registry
from tnseg_desktop.model.lite_weights import save_lite
from tnseg_desktop.paths import shipped_models_dir, user_models_dir
from tnseg_desktop.store import AnnotationStore
from tnseg_desktop.training import retrain, versions


def _substitute_shipped() -> Path:
    """A valid tnseg-lite file, but not the shipped one, placed where the shipped model is looked for first."""
    path = user_models_dir() / "tnseg-lite.safetensors"
    save_lite(tiny_model(1), path, {"note": "not the shipped weights"})
    return path


def test_segment_refuses_a_file_that_fails_its_check(tmp_path: Path, capsys) -> None:
    img, _ = synthetic_frame(np.random.default_rng(0))
    cv2.imwrite(str(tmp_path / "frame.png"), img)
    assert registry.path_for("tnseg-lite").parent == shipped_models_dir()  # the real one passes
    bad = _substitute_shipped()
    with pytest.raises(registry.ModelCorrupt):
        registry.path_for("tnseg-lite")
    code = cli.main(["segment", str(tmp_path / "frame.png"), "--out", str(tmp_path / "out"), "--device", "cpu"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0
    assert len(err) == 1 and str(bad) in err[0] and "fails its check" in err[0]
    assert not list(tmp_path.glob("out/**/*.png"))


def test_retraining_never_starts_from_a_file_that_fails_its_check(tmp_path: Path) -> None:
    masks = write_cine_folder(tmp_path / "cine", 20)
    store = AnnotationStore(tmp_path / "store")
    sid, digest = add_study(store, tmp_path / "cine")
    accept_all(store, sid, masks, content_hash=digest)
    assert retrain.plan_retrain(store, retrain.RetrainSettings(min_new_frames=5, replay_root=None)).base_weights is not None
    _substitute_shipped()
    plan = retrain.plan_retrain(store, retrain.RetrainSettings(min_new_frames=5, replay_root=None))
    assert not plan.ready and plan.base_weights is None and "check" in plan.reason
    with pytest.raises(registry.ModelCorrupt):
        versions.shipped_weights()
    store.close()


def test_the_window_says_when_the_active_version_cannot_be_used(tmp_path: Path) -> None:
    from tnseg_desktop.ui.model_provider import LITE, ModelProvider

    store = AnnotationStore(tmp_path / "store")
    trained = save_lite(tiny_model(2), user_models_dir() / "tnseg-lite-u1.safetensors")
    store.record_model_version("tnseg-lite-u1", file=str(trained), sha256=sha256_of(trained), status="active")
    save_lite(tiny_model(3), trained)  # replaced behind the store's back
    provider = ModelProvider(device="cpu", store=store)
    loaded = provider.load(LITE, LITE)
    assert loaded.version_unusable and loaded.auto is not None
    assert "tnseg-lite-u1" in loaded.problems[0] and "shipped tnseg-lite is used instead" in loaded.problems[0]
    store.close()
