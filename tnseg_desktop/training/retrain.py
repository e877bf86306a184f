"""Retrain on my edits: plan a job from the store, run the worker, gate the result, record it.

The GUI (ui/retrain_panel.py) runs the worker with QProcess and calls
``plan_retrain``, ``start_run`` and ``finish_run`` around it; scripts and the
benchmark use ``run_worker`` / ``retrain`` which do the same with subprocess
(training/worker_control.py).

Validation gate (training/retrain_gate.py): the new version is promoted only
if its Dice on the user's held-out frames is higher than its parent's, and it
loses no more than ``max_base_drop`` (1 Dice point) on the base validation set.

When LiteMedSAM is installed the same run also retrains its prompt encoder +
mask decoder (the box tool; ``training/decoder_part``). Each part is a model
version of its own role and is gated on its own: a better automatic mask is
promoted even when the decoder got worse, and the other way round.
"""

from __future__ import annotations

import logging
import os
import random
import re
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from tnseg_desktop.errors import UserFacingError
from tnseg_desktop.paths import shipped_models_dir, user_models_dir, view_cache_dir
from tnseg_desktop.store import AcceptedFrame, AnnotationStore, TrainingRun
from tnseg_desktop.training import versions
from tnseg_desktop.training.job import (
    USER_VAL_PERCENT,
    Budget,
    DecoderPart,
    Job,
    frame_key,
    is_validation_frame,
    write_job,
)
# GateDecision, gate, parse_line, request_stop and worker_command are also used from here (ui/retrain_panel.py, tests)
from tnseg_desktop.training.retrain_gate import GateDecision, RetrainResult, gate, record_finished
from tnseg_desktop.training.worker_control import Event, WorkerOutcome, parse_line, request_stop, run_worker, worker_command

log = logging.getLogger(__name__)

REPLAY_ENV = "TNSEG_REPLAY_DATA"  # a folder with train/ and val/ in the DESIGN.md data layout


def default_replay_root() -> Path | None:
    """Where the base model's own data lives: $TNSEG_REPLAY_DATA, else models/replay next to the shipped weights."""
    env = os.environ.get(REPLAY_ENV)
    candidates = [Path(env)] if env else [shipped_models_dir() / "replay"]
    return next((p for p in candidates if (p / "train" / "images").is_dir()), None)


def count_text(n: int, noun: str) -> str:
    """'No new accepted frames', '1 new accepted frame', '3 new accepted frames'."""
    if n == 0:
        return f"No {noun}s"
    return f"{n} {noun}" + ("" if n == 1 else "s")


@dataclass
class RetrainSettings:
    min_new_frames: int = 10
    val_percent: int = USER_VAL_PERCENT
    replay_ratio: float = 1.0  # replayed base frames per new training frame of the user
    max_replay: int = 300
    max_base_val: int = 100
    replay_root: Path | None = field(default_factory=default_replay_root)
    steps: int | None = None
    minutes: float | None = None  # None: chosen from the amount of data, 3 to 10 minutes
    device: str = "auto"
    # None: every core but one, like the app's own model passes. On 2 cores a second worker thread
    # doubled the window's longest stall (16 -> 30-44 ms) and its 65 % more steps in 10 minutes gained
    # no Dice (bench/ui_responsiveness.py --training-threads, bench/retrain_gain.py; see the issue note)
    threads: int | None = None
    nice: int = 5
    seed: int = 0
    max_base_drop: float = 0.01
    # p_auto 0.8: a short fine-tune spends most samples on the automatic mask, which is what the
    # user's accepted edits correct (bench/retrain_gain.py, same base, 10 min: lr 5e-4 / p_auto 0.5
    # -1.5 val Dice points, 2e-3 / 0.5 -0.5, 2e-3 / 0.8 +1.2, 1e-3 / 0.8 +1.6; see the issue note)
    # val_every 25: at a new site (bench/retrain_gain.py, busi_dev) the base validation Dice swings by 3-5 points
    # between checkpoints 50 steps apart while the user's Dice climbs; checking often lets the worker keep one
    # that holds both (each check costs about as much as 6 steps)
    train_config: dict[str, Any] = field(default_factory=lambda: {"lr": 1e-3, "warmup": 20, "val_every": 25, "batch": 8, "p_auto": 0.8})
    decoder: bool = True  # also retrain LiteMedSAM's decoder (when installed)
    decoder_steps: int = 40
    decoder_lr: float = 3e-5  # litemedsam-thyroid's own fine-tuning rate
    decoder_views: int = 2  # also what the app writes for each accepted frame (ui/accept_views.py)
    decoder_precision: str = "bf16"
    decoder_max_base_val: int = 30

    def budget_for(self, n_train: int) -> Budget:
        if self.steps is not None or self.minutes is not None:
            return Budget(steps=self.steps, minutes=self.minutes)
        # a new site's frames need ~150-200 steps (about 5 min at 160 px on one core) before the automatic mask
        # settles (busi_dev: Dice 0.37 -> 0.65 after 50 steps, 0.76 after 150-200)
        return Budget(minutes=float(min(10.0, max(5.0, 2.0 + 0.08 * n_train))))


@dataclass
class RetrainPlan:
    base_name: str
    base_weights: Path | None
    base_last_edit_id: int
    new_train: list[AcceptedFrame]
    new_val: list[AcceptedFrame]
    user_val: list[AcceptedFrame]  # every held-out frame of the user, old and new
    older_train: list[AcceptedFrame]
    last_edit_id: int
    budget: Budget
    ready: bool
    reason: str = ""
    decoder_base: tuple[str, Path] | None = None  # the decoder to start from, when the run retrains it
    decoder_minutes: float = 0.0

    @property
    def n_new(self) -> int:
        return len(self.new_train) + len(self.new_val)

    @property
    def estimated_minutes(self) -> float:
        if self.budget.minutes is not None:
            return self.budget.minutes + 0.5 + self.decoder_minutes  # loading and the before/after evaluation
        return (self.budget.steps or 0) * 0.5 / 60.0 + 0.5 + self.decoder_minutes  # about 0.5 s a step at 160 px on a CPU


# --- planning ---------------------------------------------------------------------------------------


class _Keys:
    """Frame keys from the store (content hash + frame index), one study lookup each."""

    def __init__(self, store: AnnotationStore) -> None:
        self.store = store
        self._hash: dict[int, str] = {}

    def __call__(self, a: AcceptedFrame) -> str:
        if a.study_id not in self._hash:
            self._hash[a.study_id] = self.store.study(a.study_id).content_hash
        return frame_key(self._hash[a.study_id], a.frame_index)


def _base_of(store: AnnotationStore) -> tuple[str, Path | None, int, str]:
    """(name, checked weights file or None, last edit it saw, why there is no file)."""
    active = store.active_model_version()
    if active is not None:
        try:
            return active.name, versions.weights_of(active), int(active.last_edit_id or 0), ""
        except UserFacingError as exc:
            return active.name, None, int(active.last_edit_id or 0), exc.one_line()
    try:
        return versions.SHIPPED_NAME, versions.shipped_weights(), 0, ""
    except UserFacingError as exc:
        return versions.SHIPPED_NAME, None, 0, exc.one_line()


# measured here (one busy core of the 2-core CPU, bf16 encoder, batch 8): 2.2 s a view, 4.1 s a decoder step;
# a finished run's own figures replace them (kept with its decoder version)
SECONDS_PER_VIEW = 2.2
SECONDS_PER_DECODER_STEP = 4.1


def _decoder_base(store: AnnotationStore) -> tuple[str, Path] | None:
    try:
        return versions.active_decoder(store)
    except UserFacingError as exc:
        log.warning("the decoder in use cannot be retrained: %s", exc.one_line())
        return None


def _measured_speeds(store: AnnotationStore) -> tuple[float, float]:
    """(seconds per view, per decoder step): the newest finished run's figures, else the ones measured here."""
    per_view = per_step = None
    for v in reversed(store.list_model_versions("decoder")):
        part = v.metrics.get("timing") or {}
        if per_step is None and part.get("seconds_per_step"):
            per_step = float(part["seconds_per_step"])
        # only a figure over views actually encoded ("views_made"): one over cache hits too would count the cache twice
        if per_view is None and part.get("seconds_per_view") and "views_made" in part:
            per_view = float(part["seconds_per_view"])
    return per_view or SECONDS_PER_VIEW, per_step or SECONDS_PER_DECODER_STEP


def _views_to_encode(store: AnnotationStore, frames: list[AcceptedFrame], k: int, key: Callable[[AcceptedFrame], str],
                     precision: str) -> int:
    """The views of these accepted frames not yet in the view cache (the app writes them as frames are accepted,
    training/accept_views.py); every one of them when the cache cannot be told."""
    from tnseg_desktop.training import view_index

    sha = view_index.stock_encoder_sha()
    if sha is None or not frames:
        return len(frames) * k
    mask_sha = {int(r["id"]): str(r["sha256"]) for r in store.db.query("SELECT id, sha256 FROM masks WHERE kind = 'final'")}
    cache = view_cache_dir()
    return sum(max(0, k - view_index.cached_views(cache, sha, precision, key(a), mask_sha.get(a.final_mask_id, "")))
               for a in frames)


def _decoder_minutes(store: AnnotationStore, s: RetrainSettings, train: list[AcceptedFrame], val: list[AcceptedFrame],
                     key: Callable[[AcceptedFrame], str]) -> float:
    """Encoding the views not yet cached plus the decoder steps, at measured speeds. The user's frames are counted
    one by one; the replay sample and the base validation frames, which the store cannot tell, all count."""
    per_view, per_step = _measured_speeds(store)
    n_views = (_views_to_encode(store, train, s.decoder_views, key, s.decoder_precision) + min(len(train), s.max_replay)
               + _views_to_encode(store, val, 1, key, s.decoder_precision) + s.decoder_max_base_val)
    return (n_views * per_view + s.decoder_steps * per_step) / 60.0


def plan_retrain(store: AnnotationStore, settings: RetrainSettings | None = None) -> RetrainPlan:
    """What a retraining would use now, and whether it can start (with the reason when not)."""
    s = settings or RetrainSettings()
    base_name, base_weights, cutoff, base_problem = _base_of(store)
    key = _Keys(store)
    everything = store.accepted_frames()
    val = [a for a in everything if is_validation_frame(key(a), s.val_percent)]
    val_ids = {a.edit_id for a in val}
    new = [a for a in everything if a.edit_id > cutoff]
    new_train = [a for a in new if a.edit_id not in val_ids]
    new_val = [a for a in new if a.edit_id in val_ids]
    older_train = [a for a in everything if a.edit_id <= cutoff and a.edit_id not in val_ids]
    last = max([a.edit_id for a in new], default=cutoff)
    plan = RetrainPlan(base_name, base_weights, cutoff, new_train, new_val, val, older_train, last,
                       s.budget_for(len(new_train)), ready=False)
    if s.decoder:
        plan.decoder_base = _decoder_base(store)
        if plan.decoder_base is not None:
            plan.decoder_minutes = _decoder_minutes(store, s, new_train, val, key)
    if base_weights is None:
        plan.reason = f"The current model '{base_name}' has no usable weights file to start from ({base_problem})."
    elif plan.n_new < s.min_new_frames:
        plan.reason = f"{count_text(plan.n_new, 'new accepted frame')} since the current model; at least {s.min_new_frames} are needed."
    elif not new_train:
        plan.reason = "All new accepted frames are held aside for validation; accept a few more frames."
    elif not val:
        plan.reason = "None of your accepted frames is held aside for checking the new model yet; accept a few more frames."
    else:
        plan.ready = True
    return plan


def _store_ref(store: AnnotationStore, a: AcceptedFrame, key: str, origin: str) -> dict[str, Any]:
    row = store.db.query_one("SELECT file, sha256 FROM masks WHERE id = ?", (int(a.final_mask_id),))
    if row is None:
        raise UserFacingError(f"the annotation store lost the mask of frame {a.frame_index} of {a.source_path}.")
    return {"key": key, "origin": origin, "source": a.source_path, "frame": a.frame_index, "store": str(store.root),
            "mask_file": row["file"], "mask_sha256": row["sha256"], "tool": a.tool}


def _folder_refs(folder: Path, origin: str) -> list[dict[str, Any]]:
    from tnseg_desktop.training.data import list_pairs

    return [{"key": f"{origin}:{sid}", "origin": origin, "image": str(ip), "mask": str(mp)}
            for sid, ip, mp in list_pairs(folder) if mp is not None]


def _next_version_name(store: AnnotationStore, base_name: str) -> str:
    m = re.fullmatch(r"(.+)-u\d+", base_name)
    family = m.group(1) if m else base_name
    taken = {v.name for v in store.list_model_versions()}
    n = 1
    while f"{family}-u{n}" in taken or (user_models_dir() / f"{family}-u{n}.safetensors").exists():
        n += 1
    return f"{family}-u{n}"


def build_job(store: AnnotationStore, plan: RetrainPlan, settings: RetrainSettings | None = None) -> Job:
    """The job for ``plan``: the user's new training frames, a replay sample, both validation sets."""
    from tnseg_desktop.model.device import threads_leaving_a_core  # imports torch; planning alone does not need it

    s = settings or RetrainSettings()
    if not plan.ready:
        raise UserFacingError(plan.reason)
    key = _Keys(store)
    rng = random.Random(f"{s.seed}:{plan.last_edit_id}")
    train = [_store_ref(store, a, key(a), "user") for a in plan.new_train]
    pool = [_store_ref(store, a, key(a), "replay-user") for a in plan.older_train]
    val_base: list[dict[str, Any]] = []
    if s.replay_root is not None:
        pool += _folder_refs(s.replay_root / "train", "replay")
        if (s.replay_root / "val" / "images").is_dir():
            val_base = _folder_refs(s.replay_root / "val", "base-val")
            val_base = val_base[: s.max_base_val]
    n_replay = min(len(pool), s.max_replay, int(round(s.replay_ratio * len(train))))
    train += sorted(rng.sample(pool, n_replay), key=lambda r: r["key"])
    val_user = [_store_ref(store, a, key(a), "user-val") for a in plan.user_val]
    name = _next_version_name(store, plan.base_name)
    assert plan.base_weights is not None
    decoder = None
    if plan.decoder_base is not None:
        dec_name = _next_version_name(store, plan.decoder_base[0])
        decoder = DecoderPart(base_name=plan.decoder_base[0], base_weights=str(plan.decoder_base[1]), output_name=dec_name,
                              output_weights=str(user_models_dir() / f"{dec_name}.safetensors"), view_cache=str(view_cache_dir()),
                              steps=s.decoder_steps, lr=s.decoder_lr, views=s.decoder_views, max_base_val=s.decoder_max_base_val,
                              precision=s.decoder_precision)
    return Job(base_name=plan.base_name, base_weights=str(plan.base_weights), output_name=name,
               output_weights=str(user_models_dir() / f"{name}.safetensors"), train=train, val_user=val_user,
               val_base=val_base, device=s.device, budget=plan.budget, train_config=dict(s.train_config),
               threads=s.threads or threads_leaving_a_core(), nice=s.nice, decoder=decoder,
               max_base_drop=s.max_base_drop)


def start_run(store: AnnotationStore, plan: RetrainPlan, settings: RetrainSettings | None = None) -> tuple[TrainingRun, Job, Path]:
    """Record the base version and the run, write the job file; returns (run, job, job path)."""
    s = settings or RetrainSettings()
    job = build_job(store, plan, s)
    if store.active_model_version() is None:
        versions.ensure_base_version(store, plan.base_name, None if plan.base_name == versions.SHIPPED_NAME else plan.base_weights)
    if job.decoder is not None:
        versions.ensure_base_decoder_version(store)
    # a folder of its own per run: two attempts at one version name never share a job, log or STOP file
    (store.root / "training").mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix=f"{job.output_name}-", dir=store.root / "training"))
    job_path = run_dir / "job.json"
    summary = {"path": str(job_path), "output": job.output_name, "counts": job.counts(), "budget": job.budget.to_json()}
    try:
        # refuses while another retraining of this store runs (the one-per-store lock)
        run = store.record_training_run(base_version=plan.base_name, job=summary, n_edits=plan.n_new,
                                        last_edit_id=plan.last_edit_id, log_path=str(run_dir / "worker.log"))
    except BaseException:
        run_dir.rmdir()
        raise
    job.run_id = run.id
    write_job(job, job_path)
    return run, job, job_path


def note_worker_started(store: AnnotationStore, run: TrainingRun, event: Event) -> None:
    """On the worker's 'start' line: record its pid, so the run's lock holds as long as the worker lives."""
    if event.get("event") == "start" and isinstance(event.get("pid"), int):
        store.set_training_run_worker(run.id, event["pid"])


# --- recording the result -----------------------------------------------------------------------------


def finish_run(store: AnnotationStore, run: TrainingRun, job: Job, outcome: WorkerOutcome, cancel_requested: bool = False,
               settings: RetrainSettings | None = None) -> RetrainResult:
    """Apply the gate to a finished worker and record the version (active or rejected) and the run."""
    s = settings or RetrainSettings()
    done = outcome.done
    if cancel_requested or outcome.cancelled:
        if done is not None:  # it finished just as the user cancelled: honour the cancel
            Path(done["output"]).unlink(missing_ok=True)
            if (done.get("decoder") or {}).get("output"):
                Path(done["decoder"]["output"]).unlink(missing_ok=True)
        finished = store.finish_training_run(run.id, "cancelled")
        return RetrainResult("cancelled", finished, message="Training was cancelled; the model in use is unchanged.")
    if done is None:
        message = outcome.error_message()
        finished = store.finish_training_run(run.id, "failed", error=message)
        return RetrainResult("failed", finished, message=message)
    return record_finished(store, run, job, done, s.max_base_drop)


def retrain(store: AnnotationStore, settings: RetrainSettings | None = None, on_event: Callable[[Event], None] | None = None,
            cancel: threading.Event | None = None, env: dict[str, str] | None = None) -> RetrainResult:
    """Plan, run the worker, gate and record, all in one call (scripts, benchmark, tests)."""
    s = settings or RetrainSettings()
    plan = plan_retrain(store, s)
    if not plan.ready:
        raise UserFacingError(plan.reason)
    run, job, job_path = start_run(store, plan, s)

    def on_line(event: Event) -> None:
        note_worker_started(store, run, event)
        if on_event is not None:
            on_event(event)

    outcome = run_worker(job_path, on_line, cancel, env)
    return finish_run(store, run, job, outcome, cancel_requested=bool(cancel and cancel.is_set()), settings=s)
