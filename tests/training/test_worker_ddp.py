"""The same worker under torchrun: two CPU processes (gloo), one model written, one progress stream."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from retrain_support import fast_settings, store_with_edits

from tnseg_desktop.model.lite_weights import load_lite
from tnseg_desktop.training import retrain
from tnseg_desktop.training.job import EXIT_OK

pytest.importorskip("torch.distributed.run")


@pytest.mark.slow
def test_worker_under_torchrun_with_two_processes(tmp_path):
    store, _ = store_with_edits(tmp_path, n=20)
    settings = fast_settings(steps=6)
    _, job, job_path = retrain.start_run(store, retrain.plan_retrain(store, settings), settings)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "tnseg_desktop.training.worker", str(job_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    events = [e for e in map(retrain.parse_line, proc.stdout.splitlines()) if e is not None]
    assert proc.returncode == EXIT_OK, proc.stderr[-3000:]
    assert events[0]["event"] == "start" and events[0]["world_size"] == 2
    steps = [e["step"] for e in events if e["event"] == "step"]
    assert steps == list(range(1, 7))  # rank 0 alone reports
    done = [e for e in events if e["event"] == "done"]
    assert len(done) == 1 and done[0]["steps"] == 6
    assert load_lite(done[0]["output"]).config["base_channels"] == 8
