"""Every job-file field is checked before the worker uses it; a bad one is a job-file error, never a crash or a write elsewhere."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from retrain_support import fast_settings, store_with_edits

from tnseg_desktop.model.lite_weights import save_lite
from tnseg_desktop.paths import user_models_dir
from tnseg_desktop.training import retrain
from tnseg_desktop.training.job import EXIT_FAILED, JobError, read_job, write_job
from retrain_support import tiny_model


@pytest.fixture
def job_data(tmp_path: Path) -> tuple[dict, Path]:
    store, _ = store_with_edits(tmp_path, n=20)
    settings = fast_settings()
    job = retrain.build_job(store, retrain.plan_retrain(store, settings), settings)
    store.close()
    path = write_job(job, tmp_path / "run" / "job.json")
    read_job(path)  # the job the app writes passes
    return json.loads(path.read_text()), path


def _set(data: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    node = data
    for p in parents:
        node = node[int(p)] if p.isdigit() else node[p]
    node[last] = value


@pytest.mark.parametrize("field, value, words", [
    ("output.weights", "../../../../../../tmp/evil.safetensors", "outside the model folder"),
    ("output.weights", "/etc/evil.safetensors", "outside the model folder"),
    ("output.weights", "x.pt", ".safetensors"),
    ("output.name", "../x", "plain model name"),
    ("budget.minutes", float("nan"), "budget.minutes"),
    ("budget.minutes", -1.0, "budget.minutes"),
    ("budget.steps", -5, "budget.steps"),
    ("budget.steps", 0, "budget.steps"),
    ("train.0.frame", -1, "train[0].frame"),
    ("train.0.mask_file", "../../../../etc/passwd", "inside the store"),
    ("train_config.size", 0, "train_config.size"),
    ("train_config.batch", 0, "train_config.batch"),
    ("train_config.lr", float("inf"), "train_config.lr"),
    ("train_config.bogus", 1, "does not know"),
    ("threads", -2, "threads"),
    ("device", "cuda; rm -rf", "device"),
])
def test_a_bad_field_is_a_job_file_error(job_data, field: str, value, words: str) -> None:
    data, path = job_data
    if field == "output.weights" and not value.startswith("/"):
        value = str(user_models_dir() / value)
    _set(data, field, value)
    path.write_text(json.dumps(data))
    with pytest.raises(JobError, match=words.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
        read_job(path)


def test_an_output_that_exists_is_never_written_over(job_data) -> None:
    data, path = job_data
    active = save_lite(tiny_model(5), user_models_dir() / "tnseg-lite-u1.safetensors")
    before = active.read_bytes()
    data["output"]["weights"] = str(active)
    path.write_text(json.dumps(data))
    with pytest.raises(JobError, match="already exists"):
        read_job(path)
    assert active.read_bytes() == before


def test_the_worker_reports_a_job_file_error_and_writes_nothing(job_data, tmp_path: Path) -> None:
    data, path = job_data
    evil = tmp_path / "outside" / "evil.safetensors"
    data["output"]["weights"] = str(user_models_dir() / ".." / ".." / ".." / evil.relative_to("/"))
    data["budget"]["minutes"] = float("nan")
    path.write_text(json.dumps(data))
    proc = subprocess.run(retrain.worker_command(path), capture_output=True, text=True, timeout=300)
    assert proc.returncode == EXIT_FAILED
    last = json.loads(proc.stdout.strip().splitlines()[-1])
    assert last["event"] == "error" and last["kind"] == "user" and "job.json" in last["message"]
    assert not evil.exists()
