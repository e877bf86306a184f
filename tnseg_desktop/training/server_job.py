"""Moving a retraining to a GPU server and bringing the result back.

``pack_job`` turns a job of this machine (which names source files and the
store's mask files) into a self-contained folder: job.json, the base weights
and every frame as PNG pairs named by a hash of the frame key, paths relative
to the folder. On the server::

    torchrun --nproc_per_node N -m tnseg_desktop.training.worker FOLDER/job.json > FOLDER/progress.jsonl

``import_result`` then records the server's model in this machine's store
through the same validation gate as a local run.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import cv2
import numpy as np

from tnseg_desktop.atomic_write import atomic_path
from tnseg_desktop.errors import UserFacingError
from tnseg_desktop.file_hash import sha256_of
from tnseg_desktop.store import AnnotationStore
from tnseg_desktop.training import retrain
from tnseg_desktop.training.job import EXIT_FAILED, EXIT_OK, read_job, write_job
from tnseg_desktop.training.job_data import FrameLoader


def pack_job(job_path: str | Path, dest: str | Path) -> Path:
    """Write a folder that runs anywhere; returns its job.json. Frame files carry no names from the source."""
    job = read_job(job_path)
    dest = Path(dest)
    (dest / "frames").mkdir(parents=True, exist_ok=True)
    loader = FrameLoader()

    def pack(refs: list[dict]) -> list[dict]:
        out = []
        for ref in refs:
            sample = loader.load(ref)
            name = hashlib.sha256(str(ref["key"]).encode("utf-8")).hexdigest()[:24]
            cv2.imwrite(str(dest / "frames" / f"{name}.png"), sample.image)
            cv2.imwrite(str(dest / "frames" / f"{name}_mask.png"), sample.mask.astype(np.uint8) * 255)
            out.append({"key": name, "origin": ref.get("origin"), "image": f"frames/{name}.png", "mask": f"frames/{name}_mask.png"})
        return out

    try:
        job.train, job.val_user, job.val_base = pack(job.train), pack(job.val_user), pack(job.val_base)
    finally:
        loader.close()
    shutil.copyfile(job.base_weights, dest / "base.safetensors")
    job.base_weights = "base.safetensors"
    job.output_weights = f"{job.output_name}.safetensors"
    job.device, job.threads, job.nice = "auto", None, 0
    return write_job(job, dest / "job.json")


def import_result(store: AnnotationStore, job_path: str | Path, progress_file: str | Path, weights_file: str | Path | None = None) -> retrain.RetrainResult:
    """Record a run done elsewhere: ``job_path`` is this machine's job, ``progress_file`` the worker's stdout there."""
    job = read_job(job_path)
    run = next((r for r in store.list_training_runs() if r.id == job.run_id), None)
    if run is None:
        raise UserFacingError(f"the annotation store has no training run {job.run_id} for this job.", str(job_path))
    lines = Path(progress_file).read_text(encoding="utf-8", errors="replace").splitlines()
    events = [e for e in map(retrain.parse_line, lines) if e is not None]
    done = next((e for e in reversed(events) if e.get("event") == "done"), None)
    if done is not None:
        source = Path(weights_file) if weights_file else Path(progress_file).parent / Path(done["output"]).name
        if not source.is_file() or sha256_of(source) != done["sha256"]:
            raise UserFacingError("the trained weights file is missing or is not the one the server reported.", str(source))
        target = Path(job.output_weights)
        with atomic_path(target) as tmp:
            shutil.copyfile(source, tmp)
        done["output"] = str(target)
    outcome = retrain.WorkerOutcome(EXIT_OK if done is not None else EXIT_FAILED, events)
    return retrain.finish_run(store, run, job, outcome)
