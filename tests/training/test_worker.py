"""The retraining worker as its own process: a real run, cancel, crashes and unreadable inputs."""

from __future__ import annotations

import json
import os
import threading

import pytest
from retrain_support import fast_settings, store_with_edits

from tnseg_desktop.model import registry
from tnseg_desktop.paths import user_models_dir
from tnseg_desktop.training import retrain
from tnseg_desktop.training.job import EXIT_CANCELLED, EXIT_FAILED, read_job, write_job
from tnseg_desktop.training.worker import FAULT_ENV


def _models_on_disk() -> list[str]:
    return sorted(p.name for p in user_models_dir().glob("*.safetensors"))


def test_worker_trains_a_tiny_model_and_the_version_is_recorded(tmp_path):
    store, _ = store_with_edits(tmp_path, n=30)
    events = []
    result = retrain.retrain(store, fast_settings(), on_event=events.append)

    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done"
    steps = [e for e in events if e["event"] == "step"]
    assert len(steps) == 30 and all({"loss", "eta_s", "elapsed_s"} <= e.keys() for e in steps)
    assert any(e["event"] == "val" for e in events)

    assert result.status == "promoted", result.message
    v = result.version
    assert v.parent_name == "tiny-base" and v.status == "active" and v.last_edit_id == store.last_edit_id()
    assert v.data_counts["train_user"] + v.data_counts["val_user"] == 30
    assert v.metrics["after"]["val_user"]["dice"] > v.metrics["before"]["val_user"]["dice"]
    assert store.active_model_version().name == v.name
    assert _models_on_disk() == [f"{v.name}.safetensors"]
    assert registry.entry(v.name).kind == "user-trained"
    run = store.list_training_runs()[-1]
    assert run.status == "succeeded" and run.result_version == v.name
    # everything accepted so far went into that version: nothing new to train on
    assert retrain.plan_retrain(store, fast_settings()).n_new == 0


def test_sigterm_cancels_cleanly_and_changes_nothing(tmp_path):
    store, _ = store_with_edits(tmp_path, n=20)
    settings = fast_settings(steps=100000)
    active_before = store.active_model_version()
    plan = retrain.plan_retrain(store, settings)
    run, job, job_path = retrain.start_run(store, plan, settings)
    cancel = threading.Event()
    seen = []

    def on_event(e):
        seen.append(e["event"])
        if e["event"] == "step" and e["step"] >= 2:
            cancel.set()

    outcome = retrain.run_worker(job_path, on_event, cancel)
    assert outcome.exit_code == EXIT_CANCELLED and outcome.cancelled
    assert seen[-1] == "cancelled" and "step" in seen
    result = retrain.finish_run(store, run, job, outcome, cancel_requested=True)
    assert result.status == "cancelled"
    assert store.active_model_version() == active_before
    assert [v.name for v in store.list_model_versions()] == ["tiny-base"]
    assert _models_on_disk() == []
    assert not any(p.suffix == ".tmp" for p in user_models_dir().iterdir())
    assert store.list_training_runs()[-1].status == "cancelled"


@pytest.mark.parametrize("fault, expected", [
    ("crash-at-step:2", "fault injected"),
    ("exit-at-step:2", "ended unexpectedly (exit code 70)"),
])
def test_a_crashing_worker_is_reported_not_propagated(tmp_path, fault, expected):
    store, _ = store_with_edits(tmp_path, n=20)
    env = {**os.environ, FAULT_ENV: fault}
    result = retrain.retrain(store, fast_settings(), env=env)
    assert result.status == "failed" and expected in result.message
    assert store.list_training_runs()[-1].status == "failed"
    assert store.active_model_version().name == "tiny-base"
    assert _models_on_disk() == []


def test_corrupt_base_weights_give_a_one_line_error(tmp_path):
    store, _ = store_with_edits(tmp_path, n=20)
    settings = fast_settings()
    run, job, job_path = retrain.start_run(store, retrain.plan_retrain(store, settings), settings)
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x00garbage, not weights" * 10)
    job.base_weights = str(broken)
    write_job(job, job_path)
    outcome = retrain.run_worker(job_path)
    assert outcome.exit_code == EXIT_FAILED
    err = outcome.last("error")
    assert err["kind"] == "user" and "broken.safetensors" in err["message"] and "\n" not in err["message"]
    result = retrain.finish_run(store, run, job, outcome)
    assert result.status == "failed" and store.active_model_version().name == "tiny-base"


def test_job_file_round_trip_and_fixed_validation_split(tmp_path):
    store, _ = store_with_edits(tmp_path, n=30)
    settings = fast_settings()
    plan = retrain.plan_retrain(store, settings)
    job = retrain.build_job(store, plan, settings)
    path = write_job(job, tmp_path / "job.json")
    again = read_job(path)
    assert again.to_json() == json.loads(path.read_text())
    train_keys = {f["key"] for f in again.train}
    val_keys = {f["key"] for f in again.val_user}
    assert train_keys and val_keys and not train_keys & val_keys
    # the assignment depends on the frame alone: planning again (even in another store) gives the same split
    other, _ = store_with_edits(tmp_path / "other", n=30)
    job2 = retrain.build_job(other, retrain.plan_retrain(other, settings), settings)
    assert {f["key"] for f in job2.val_user} == val_keys
    # the gate's allowed base drop reaches the worker (its interpolation chooses alpha by the same rule)
    settings.max_base_drop = 0.03
    strict = read_job(write_job(retrain.build_job(store, plan, settings), tmp_path / "job3.json"))
    assert strict.max_base_drop == 0.03


def test_the_app_leaves_a_core_for_the_window_when_it_starts_the_worker(tmp_path, monkeypatch):
    store, _ = store_with_edits(tmp_path, n=12)
    settings = fast_settings(threads=None)
    plan = retrain.plan_retrain(store, settings)
    for cores, expected in ((2, 1), (8, 7), (1, 1)):
        monkeypatch.setattr(os, "cpu_count", lambda c=cores: c)
        job = retrain.build_job(store, plan, settings)
        assert job.threads == expected and read_job(write_job(job, tmp_path / "job.json")).threads == expected
    # a site's explicit choice wins
    assert retrain.build_job(store, plan, fast_settings(threads=3)).threads == 3


def test_too_few_frames_disable_retraining_with_a_reason(tmp_path):
    store, _ = store_with_edits(tmp_path, n=4)
    plan = retrain.plan_retrain(store, fast_settings())
    assert not plan.ready and "4 new accepted frames" in plan.reason and "at least 5" in plan.reason


def test_a_stop_file_cancels_where_there_are_no_signals(tmp_path):
    store, _ = store_with_edits(tmp_path, n=20)
    settings = fast_settings(steps=100000)
    run, job, job_path = retrain.start_run(store, retrain.plan_retrain(store, settings), settings)
    asked = []

    def on_event(e):
        if e["event"] == "step" and not asked:
            retrain.request_stop(job_path, lambda: asked.append(True))  # no SIGTERM sent: only the file

    outcome = retrain.run_worker(job_path, on_event)
    assert asked and outcome.exit_code == EXIT_CANCELLED
    assert retrain.finish_run(store, run, job, outcome).status == "cancelled"
    assert _models_on_disk() == []
    # the next attempt at the same version name is not cancelled by the old file
    _, _, again = retrain.start_run(store, retrain.plan_retrain(store, settings), settings)
    assert again.parent != job_path.parent and not (again.parent / "STOP").exists()  # a folder of its own
