"""The validation gate and roll-back (a new version reaching the open session: tests/ui/test_retrain_panel.py)."""

from __future__ import annotations

import numpy as np
import pytest
from retrain_support import SIZE, fast_settings, store_with_edits, synthetic_frame

from tnseg_desktop.model.lite_predictor import LitePredictor
from tnseg_desktop.model.lite_weights import load_lite
from tnseg_desktop.training import retrain, versions
from tnseg_desktop.training.retrain import gate


def _m(ub, ua, bb=None, ba=None):
    part = lambda d: None if d is None else {"dice": d}  # noqa: E731
    return {"before": {"val_user": part(ub), "val_base": part(bb)}, "after": {"val_user": part(ua), "val_base": part(ba)}}


def test_gate_rules():
    assert gate(_m(0.6, 0.7, 0.8, 0.795)).promote
    assert not gate(_m(0.6, 0.6, 0.8, 0.8)).promote  # must improve, not merely match
    assert not gate(_m(0.6, 0.5)).promote
    d = gate(_m(0.6, 0.7, 0.8, 0.785))
    assert not d.promote and "1.5 Dice points" in d.reason
    assert not gate(_m(None, None)).promote
    assert gate(_m(0.6, 0.7)).promote  # no base set: judged on the user's frames alone


def test_sabotaged_job_is_not_promoted(tmp_path):
    # training masks inverted (held-out frames keep their true masks): the new model gets worse
    store, _ = store_with_edits(tmp_path, n=24, invert_train=True)
    result = retrain.retrain(store, fast_settings(steps=25))
    assert result.status == "rejected", result.message
    assert result.version.status == "rejected" and "did not improve" in result.decision.reason
    assert store.active_model_version().name == "tiny-base"
    # the rejected version is kept in the history with its metrics
    assert {v.name for v in store.list_model_versions()} == {"tiny-base", result.version.name}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One real retraining, shared by the roll-back and hot-swap tests."""
    root = tmp_path_factory.mktemp("trained")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TNSEG_DATA_DIR", str(root / "userdata"))
        store, base = store_with_edits(root, n=30)
        result = retrain.retrain(store, fast_settings())
    assert result.status == "promoted", result.message
    yield store, base, result.version.name
    store.close()


def _frames(n=4, seed=7):
    rng = np.random.default_rng(seed)
    return [synthetic_frame(rng, SIZE)[0] for _ in range(n)]


def test_rollback_restores_the_earlier_predictions_exactly(trained):
    store, base, new_name = trained
    frames = _frames()
    before = LitePredictor(load_lite(base)).auto_probs(frames)
    assert store.active_model_version().name == new_name
    new_probs = LitePredictor(versions.load_version(store, new_name)).auto_probs(frames)
    assert not all(np.array_equal(a, b) for a, b in zip(before, new_probs))

    versions.switch_to(store, "tiny-base")
    name, path = versions.active_weights(store)
    assert name == "tiny-base"
    rolled = LitePredictor(load_lite(path)).auto_probs(frames)
    assert all(np.array_equal(a, b) for a, b in zip(before, rolled))
    assert store.model_version(new_name).status == "superseded"
    versions.switch_to(store, new_name)  # and forward again
    assert store.active_model_version().name == new_name


def test_a_changed_weights_file_is_refused(trained, tmp_path):
    store, _, new_name = trained
    v = store.model_version(new_name)
    original = open(v.file, "rb").read()
    try:
        with open(v.file, "ab") as fh:
            fh.write(b"x")
        with pytest.raises(versions.VersionError, match="changed or are damaged"):
            versions.switch_to(store, new_name)
    finally:
        with open(v.file, "wb") as fh:
            fh.write(original)
