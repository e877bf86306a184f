"""One retraining per store at a time; a run whose process is gone is marked failed at the next start."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from retrain_support import fast_settings, store_with_edits

from tnseg_desktop.store import AnnotationStore
from tnseg_desktop.store.training_runs import ABANDONED, TrainingRunningError
from tnseg_desktop.training import retrain

REPO = Path(__file__).resolve().parents[2]


def test_a_second_window_cannot_start_a_second_retraining(tmp_path: Path) -> None:
    first, _ = store_with_edits(tmp_path, n=20)
    second = AnnotationStore(first.root)  # another window on the same store
    settings = fast_settings()
    run, job, job_path = retrain.start_run(first, retrain.plan_retrain(first, settings), settings)
    jobs_before = sorted((first.root / "training").rglob("job.json"))
    with pytest.raises(TrainingRunningError, match=f"run {run.id}"):
        retrain.start_run(second, retrain.plan_retrain(second, settings), settings)
    assert sorted((first.root / "training").rglob("job.json")) == jobs_before == [job_path]
    assert [r.status for r in second.list_training_runs()] == ["running"]

    # once the first has finished, the next run gets its own job folder
    first.finish_training_run(run.id, "cancelled")
    run2, job2, job_path2 = retrain.start_run(second, retrain.plan_retrain(second, settings), settings)
    assert job_path2 != job_path and job_path2.parent != job_path.parent and job_path.is_file()
    second.finish_training_run(run2.id, "cancelled")
    first.close()
    second.close()


def test_a_run_whose_process_died_is_failed_at_the_next_start(tmp_path: Path) -> None:
    store, _ = store_with_edits(tmp_path, n=20)
    store.close()
    # another app process starts a run and is killed before it records the end
    script = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(REPO / 'tests' / 'training')!r})
        from retrain_support import fast_settings
        from tnseg_desktop.store import AnnotationStore
        from tnseg_desktop.training import retrain
        store = AnnotationStore({str(tmp_path / 'store')!r})
        s = fast_settings()
        retrain.start_run(store, retrain.plan_retrain(store, s), s)
        os._exit(9)
    """)
    subprocess.run([sys.executable, "-c", script], cwd=REPO, check=False, timeout=300)
    with AnnotationStore(tmp_path / "store") as again:
        runs = again.list_training_runs()
        assert [r.status for r in runs] == ["failed"] and runs[0].error == ABANDONED
        settings = fast_settings()
        run, _, _ = retrain.start_run(again, retrain.plan_retrain(again, settings), settings)  # the lock is free
        again.finish_training_run(run.id, "cancelled")
