"""The retraining job file: what the worker process trains on, for how long, and where it writes.

A job is plain JSON so that it can be inspected, kept with the run's log, and
copied to a server to run there under ``torchrun``::

    {
      "version": 1,
      "run_id": 3,                       # the store's training run (informational)
      "base": {"name": "tnseg-lite", "weights": "/.../tnseg-lite.safetensors"},
      "output": {"name": "tnseg-lite-u2", "weights": "/.../models/tnseg-lite-u2.safetensors"},
      "train": [FRAME, ...],             # accepted edits since the base + replay sample
      "val_user": [FRAME, ...],          # held-aside share of the user's accepted frames
      "val_base": [FRAME, ...],          # the base model's own validation set
      "device": "auto",
      "budget": {"steps": null, "minutes": 5.0},
      "train_config": {"size": 160, "batch": 8, "lr": 1e-3, "p_auto": 0.8, ...},
      "threads": 1,
      "nice": 5
    }

A FRAME names an image and its mask, either from the annotation store
(``{"key", "source", "frame", "store", "mask_file", "mask_sha256", "origin": "user"}``)
or from a data folder (``{"key", "image", "mask", "origin": "replay"|"base-val"}``).

Which of the user's frames are validation frames is decided by hashing the
frame's key, so a frame never moves between training and validation from one
run to the next.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tnseg_desktop.errors import UserFacingError

JOB_VERSION = 1

# worker exit codes (a crash killed by a signal shows up as a negative code or 128 + signal)
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CANCELLED = 3

USER_VAL_PERCENT = 20  # share of the user's accepted frames held aside for validation


class JobError(UserFacingError):
    """A job file that cannot be run."""


def frame_key(content_hash: str, frame_index: int) -> str:
    """Stable name of one frame of one study, independent of where the file is now."""
    return f"{content_hash}:{int(frame_index)}"


def is_validation_frame(key: str, percent: int = USER_VAL_PERCENT) -> bool:
    """The fixed train/validation assignment of a user frame: its key's hash, not its order or time."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % 100 < percent


@dataclass
class Budget:
    steps: int | None = None
    minutes: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"steps": self.steps, "minutes": self.minutes}


@dataclass
class Job:
    base_name: str
    base_weights: str
    output_name: str
    output_weights: str
    train: list[dict[str, Any]]
    val_user: list[dict[str, Any]] = field(default_factory=list)
    val_base: list[dict[str, Any]] = field(default_factory=list)
    device: str = "auto"
    budget: Budget = field(default_factory=lambda: Budget(minutes=5.0))
    train_config: dict[str, Any] = field(default_factory=dict)
    threads: int | None = None
    nice: int = 5
    run_id: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "version": JOB_VERSION,
            "run_id": self.run_id,
            "base": {"name": self.base_name, "weights": self.base_weights},
            "output": {"name": self.output_name, "weights": self.output_weights},
            "train": self.train,
            "val_user": self.val_user,
            "val_base": self.val_base,
            "device": self.device,
            "budget": self.budget.to_json(),
            "train_config": self.train_config,
            "threads": self.threads,
            "nice": self.nice,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str = "") -> "Job":
        try:
            if int(data.get("version", 0)) != JOB_VERSION:
                raise JobError(f"the job file has version {data.get('version')}, this worker reads version {JOB_VERSION}.", where)
            budget = data.get("budget") or {}
            job = cls(
                base_name=str(data["base"]["name"]),
                base_weights=str(data["base"]["weights"]),
                output_name=str(data["output"]["name"]),
                output_weights=str(data["output"]["weights"]),
                train=list(data["train"]),
                val_user=list(data.get("val_user") or []),
                val_base=list(data.get("val_base") or []),
                device=str(data.get("device") or "auto"),
                budget=Budget(steps=budget.get("steps"), minutes=budget.get("minutes")),
                train_config=dict(data.get("train_config") or {}),
                threads=data.get("threads"),
                nice=int(data.get("nice", 5)),
                run_id=data.get("run_id"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise JobError(f"the job file is incomplete or malformed ({type(exc).__name__}: {exc}).", where) from None
        if not job.train:
            raise JobError("the job has no training frames.", where)
        if job.budget.steps is None and job.budget.minutes is None:
            raise JobError("the job sets no budget (steps or minutes).", where)
        return job

    def resolve_paths(self, root: Path) -> "Job":
        """Relative paths (a job packed to run on another machine) are relative to the job file's folder."""
        def absolute(p: str) -> str:
            return p if Path(p).is_absolute() else str(root / p)

        self.base_weights = absolute(self.base_weights)
        self.output_weights = absolute(self.output_weights)
        for ref in (*self.train, *self.val_user, *self.val_base):
            for k in ("image", "mask"):
                if k in ref:
                    ref[k] = absolute(str(ref[k]))
        return self

    def counts(self) -> dict[str, int]:
        """How many frames of each kind the job uses (kept with the version as its data counts)."""
        user_train = sum(1 for f in self.train if f.get("origin") == "user")
        return {
            "train_user": user_train,
            "train_replay": len(self.train) - user_train,
            "val_user": len(self.val_user),
            "val_base": len(self.val_base),
        }


def stop_file_for(job_path: str | Path) -> Path:
    """Creating this file asks the worker to stop (portable: Windows has no SIGTERM for console programs)."""
    return Path(job_path).with_name("STOP")


def write_job(job: Job, path: str | Path) -> Path:
    """Write atomically, so the worker never reads half a job."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(job.to_json(), fh, indent=1)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def read_job(path: str | Path) -> Job:
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise JobError("job file not found.", str(p)) from None
    except (OSError, json.JSONDecodeError) as exc:
        raise JobError(f"cannot read the job file ({exc}).", str(p)) from None
    if not isinstance(data, dict):
        raise JobError("the job file does not hold a JSON object.", str(p))
    return Job.from_json(data, str(p)).resolve_paths(p.resolve().parent)
