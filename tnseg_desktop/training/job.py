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
      "nice": 5,
      "decoder": {                       # optional: also retrain LiteMedSAM's prompt encoder + mask decoder
        "base": {"name": "litemedsam-thyroid", "weights": "/.../litemedsam-thyroid.safetensors"},
        "output": {"name": "litemedsam-thyroid-u1", "weights": "/.../models/litemedsam-thyroid-u1.safetensors"},
        "steps": 40, "lr": 1e-5, "views": 2, "precision": "bf16", "view_cache": "/.../view_cache", "max_base_val": 30
      }
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
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tnseg_desktop.atomic_write import atomic_write_text
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
class DecoderPart:
    """The second trainable part of a run: LiteMedSAM's prompt encoder + mask decoder on cached embeddings."""

    base_name: str
    base_weights: str  # a decoder file (shipped litemedsam-thyroid or a user version)
    output_name: str
    output_weights: str
    view_cache: str
    steps: int = 40
    lr: float = 1e-5
    views: int = 2  # embeddings per user frame (plain, mirrored); replay and validation frames get one
    max_base_val: int = 30
    precision: str = "bf16"  # the encoder pass's (part of each view file's name: the app writes the same files at accept)

    def to_json(self) -> dict[str, Any]:
        return {"base": {"name": self.base_name, "weights": self.base_weights},
                "output": {"name": self.output_name, "weights": self.output_weights},
                "steps": self.steps, "lr": self.lr, "views": self.views, "precision": self.precision,
                "view_cache": self.view_cache, "max_base_val": self.max_base_val}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "DecoderPart":
        return cls(base_name=str(data["base"]["name"]), base_weights=str(data["base"]["weights"]),
                   output_name=str(data["output"]["name"]), output_weights=str(data["output"]["weights"]),
                   view_cache=str(data["view_cache"]), steps=data.get("steps", 40), lr=data.get("lr", 1e-5),
                   views=data.get("views", 2), max_base_val=data.get("max_base_val", 30),
                   precision=data.get("precision", "bf16"))


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
    decoder: DecoderPart | None = None
    # how far the base validation Dice may fall (the app's gate, RetrainSettings.max_base_drop); the worker's
    # interpolation picks its alpha by the same rule
    max_base_drop: float = 0.01

    def to_json(self) -> dict[str, Any]:
        out = {
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
            "max_base_drop": self.max_base_drop,
        }
        if self.decoder is not None:
            out["decoder"] = self.decoder.to_json()
        return out

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
                decoder=DecoderPart.from_json(data["decoder"]) if data.get("decoder") else None,
                max_base_drop=float(data.get("max_base_drop", 0.01)),
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
        if self.decoder is not None:
            self.decoder.base_weights = absolute(self.decoder.base_weights)
            self.decoder.output_weights = absolute(self.decoder.output_weights)
            self.decoder.view_cache = absolute(self.decoder.view_cache)
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


# train_config fields a job may set: (type, lowest, highest); "size" is checked by model.lite_limits
_TRAIN_FIELDS: dict[str, tuple[type, float, float]] = {
    "batch": (int, 1, 512), "lr": (float, 1e-7, 1.0), "weight_decay": (float, 0.0, 1.0), "warmup": (int, 0, 1_000_000),
    "seed": (int, 0, 2**31 - 1), "val_every": (int, 1, 10_000_000), "p_auto": (float, 0.0, 1.0),
    "p_object_crop": (float, 0.0, 1.0), "p_self_prior": (float, 0.0, 1.0), "max_click_rounds": (int, 0, 50),
    "ema": (float, 0.0, 0.99999), "hard_weighting": (float, 0.0, 100.0), "aug_strength": (float, 0.0, 10.0),
}
MAX_STEPS = 10_000_000
MAX_MINUTES = 7 * 24 * 60.0
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d{1,2})?")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _number(value: Any, kind: type, lo: float, hi: float, what: str, where: str) -> Any:
    """``value`` as ``kind`` when it is a finite number in [lo, hi]; a JobError naming ``what`` otherwise."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float) if kind is float else int)
    if ok and kind is float:
        ok = math.isfinite(value)
    if not ok or not lo <= value <= hi:
        kind_text = "a whole number" if kind is int else "a number"
        raise JobError(f"{what} is {value!r}; it must be {kind_text} from {lo:g} to {hi:g}.", where)
    return kind(value)


def _inside(path: Path, folders: list[Path]) -> bool:
    resolved = path.resolve()
    return any(resolved.is_relative_to(f.resolve()) for f in folders)


def validate_job(job: Job, where: str, job_dir: Path | None = None) -> Job:
    """Check every field before the worker uses it; one JobError sentence for the first one that is wrong.

    The output must be a new ``.safetensors`` file inside the user's model folder (or, for a job packed to run
    elsewhere, inside the job's own folder): a job can never write outside them or over an existing model.
    """
    from tnseg_desktop.model.lite_limits import check_input_size
    from tnseg_desktop.paths import user_models_dir

    for what, name in (("base name", job.base_name), ("output name", job.output_name)):
        if not _NAME.fullmatch(name):
            raise JobError(f"the {what} {name!r} is not a plain model name (letters, digits, '.', '_', '-').", where)
    if not _DEVICE.fullmatch(job.device):
        raise JobError(f"the device {job.device!r} is not one of auto, cpu, cuda, cuda:N or mps.", where)
    if job.budget.steps is not None:
        job.budget.steps = _number(job.budget.steps, int, 1, MAX_STEPS, "budget.steps", where)
    if job.budget.minutes is not None:
        job.budget.minutes = _number(job.budget.minutes, float, 0.01, MAX_MINUTES, "budget.minutes", where)
    if job.threads is not None:
        job.threads = _number(job.threads, int, 1, 1024, "threads", where)
    job.nice = _number(job.nice, int, 0, 19, "nice", where)
    for key, value in job.train_config.items():
        if key == "size":
            try:
                check_input_size(value, "train_config.size")
            except UserFacingError as exc:
                raise JobError(exc.message, where) from None
        elif key in _TRAIN_FIELDS:
            job.train_config[key] = _number(value, *_TRAIN_FIELDS[key], f"train_config.{key}", where)
        else:
            raise JobError(f"train_config has a setting the worker does not know: {key!r}.", where)

    folders = [user_models_dir()] + ([job_dir] if job_dir is not None else [])
    out = Path(job.output_weights)
    if out.suffix != ".safetensors":
        raise JobError("output.weights must be a .safetensors file.", where)
    if not _inside(out, folders):
        raise JobError(f"output.weights {str(out)!r} is outside the model folder {user_models_dir()}; a job writes only there.", where)
    base = Path(job.base_weights)
    if not base.is_file():
        raise JobError(f"the base weights file {str(base)!r} does not exist.", where)
    if out.exists() or out.resolve() == base.resolve():
        raise JobError(f"output.weights {str(out)!r} already exists; a run never writes over a model.", where)

    for group in ("train", "val_user", "val_base"):
        for i, ref in enumerate(getattr(job, group)):
            _check_frame(ref, f"{group}[{i}]", where)
    if job.decoder is not None:
        _check_decoder(job, folders, where)
    return job


def _new_output(out: Path, base: Path, folders: list[Path], what: str, where: str) -> None:
    if out.suffix != ".safetensors":
        raise JobError(f"{what} must be a .safetensors file.", where)
    if not _inside(out, folders):
        raise JobError(f"{what} {str(out)!r} is outside the model folder {folders[0]}; a job writes only there.", where)
    if out.exists() or out.resolve() == base.resolve():
        raise JobError(f"{what} {str(out)!r} already exists; a run never writes over a model.", where)


def _check_decoder(job: Job, folders: list[Path], where: str) -> None:
    from tnseg_desktop.paths import user_data_dir, view_cache_dir

    d = job.decoder
    assert d is not None
    for what, name in (("decoder base name", d.base_name), ("decoder output name", d.output_name)):
        if not _NAME.fullmatch(name):
            raise JobError(f"the {what} {name!r} is not a plain model name (letters, digits, '.', '_', '-').", where)
    d.steps = _number(d.steps, int, 1, MAX_STEPS, "decoder.steps", where)
    d.lr = _number(d.lr, float, 1e-8, 1.0, "decoder.lr", where)
    d.views = _number(d.views, int, 1, 2, "decoder.views", where)
    d.max_base_val = _number(d.max_base_val, int, 0, 100_000, "decoder.max_base_val", where)
    if d.precision not in ("bf16", "fp32"):
        raise JobError(f"decoder.precision must be bf16 or fp32, not {d.precision!r}.", where)
    base = Path(d.base_weights)
    if not base.is_file():
        raise JobError(f"the decoder base weights file {str(base)!r} does not exist.", where)
    out = Path(d.output_weights)
    _new_output(out, base, folders, "decoder.output.weights", where)
    if out.resolve() == Path(job.output_weights).resolve():
        raise JobError("decoder.output.weights is the same file as output.weights.", where)
    cache_folders = [user_data_dir(), view_cache_dir()] + folders[1:]
    if not _inside(Path(d.view_cache), cache_folders):
        raise JobError(f"decoder.view_cache {d.view_cache!r} is outside the app's data folder {user_data_dir()}.", where)


def _check_frame(ref: Any, label: str, where: str) -> None:
    if not isinstance(ref, dict) or not isinstance(ref.get("key"), str):
        raise JobError(f"{label} is not a frame reference with a key.", where)
    if "image" in ref:
        if not isinstance(ref["image"], str) or not isinstance(ref.get("mask"), str):
            raise JobError(f"{label} needs an image and a mask path.", where)
        return
    for k in ("source", "store", "mask_file", "mask_sha256"):
        if not isinstance(ref.get(k), str) or not ref[k]:
            raise JobError(f"{label} has no {k}.", where)
    _number(ref.get("frame"), int, 0, 10_000_000, f"{label}.frame", where)
    if not _SHA256.fullmatch(ref["mask_sha256"]):
        raise JobError(f"{label}.mask_sha256 is not a sha256.", where)
    store = Path(ref["store"])
    if Path(ref["mask_file"]).is_absolute() or not _inside(store / ref["mask_file"], [store / "masks"]):
        raise JobError(f"{label}.mask_file {ref['mask_file']!r} is not a mask file inside the store.", where)


def stop_file_for(job_path: str | Path) -> Path:
    """Creating this file asks the worker to stop (portable: Windows has no SIGTERM for console programs)."""
    return Path(job_path).with_name("STOP")


def write_job(job: Job, path: str | Path) -> Path:
    """Write atomically, so the worker never reads half a job."""
    return atomic_write_text(path, json.dumps(job.to_json(), indent=1))


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
    job_dir = p.resolve().parent
    return validate_job(Job.from_json(data, str(p)).resolve_paths(job_dir), str(p), job_dir)
