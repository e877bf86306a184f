"""A job packed to run on another machine, and its result recorded back through the gate."""

from __future__ import annotations

import json
import subprocess

from retrain_support import fast_settings, store_with_edits

from tnseg_desktop.paths import user_models_dir
from tnseg_desktop.training import retrain
from tnseg_desktop.training.server_job import import_result, pack_job


def test_packed_job_runs_elsewhere_and_its_model_is_recorded(tmp_path):
    store, _ = store_with_edits(tmp_path / "here", n=24)
    settings = fast_settings(steps=20)
    run, job, job_path = retrain.start_run(store, retrain.plan_retrain(store, settings), settings)

    server = tmp_path / "server"
    packed = pack_job(job_path, server)
    data = json.loads(packed.read_text())
    refs = data["train"] + data["val_user"]
    assert len(refs) == 24 and all(not r["image"].startswith("/") for r in refs)
    assert data["base"]["weights"] == "base.safetensors" and "cine" not in packed.read_text()

    with open(server / "progress.jsonl", "w") as out:
        code = subprocess.run(retrain.worker_command(packed), stdout=out, stderr=subprocess.DEVNULL, timeout=600).returncode
    assert code == 0 and (server / f"{job.output_name}.safetensors").is_file()

    result = import_result(store, job_path, server / "progress.jsonl")
    assert result.status in ("promoted", "rejected") and result.version.name == job.output_name
    assert result.version.file == str(user_models_dir() / f"{job.output_name}.safetensors")
    assert store.list_training_runs()[-1].status == "succeeded"
