"""The retraining worker: ``python -m tnseg_desktop.training.worker JOB.json``.

Runs in its own OS process so that a crash or an out-of-memory here cannot
take the app down. Writes one JSON object per line on stdout:

    {"event": "start", "job": ..., "device": ..., "world_size": ...}
    {"event": "data", "train": n, "val_user": n, "val_base": n, "skipped": [...]}
    {"event": "phase", "phase": "evaluating-base" | "training" | "evaluating" | "saving"}
    {"event": "step", "step", "loss", "lr", "elapsed_s", "eta_s"[, "val_dice", ...]}
    {"event": "val", "step", "val_dice", "val_iou", "best_val_dice"}
    {"event": "done", "output", "sha256", "metrics": {...}, "data_counts": {...}, "steps", "minutes"[, "decoder": {...}]}
    {"event": "cancelled", "step"}                      (exit code 3)
    {"event": "error", "kind": "user"|"out-of-memory"|"crash", "message"}   (exit code 1)

Anything else (warnings, tracebacks) goes to stderr. SIGTERM or SIGINT stops
training at the next step; the model file is written only after training and
evaluation finished, atomically, so a stopped or failed run leaves no file.
The same module runs under ``torchrun`` for data-parallel training
(:mod:`tnseg_desktop.training.ddp`).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable, TextIO

from tnseg_desktop.errors import UserFacingError
from tnseg_desktop.training.job import EXIT_CANCELLED, EXIT_FAILED, EXIT_OK, Job, read_job, stop_file_for

# test hook: "crash-at-step:N" raises inside training, "exit-at-step:N" dies without a final line
FAULT_ENV = "TNSEG_WORKER_FAULT"


class Cancelled(Exception):
    pass


class Emitter:
    """JSON lines on the real stdout; silent on every process but rank 0."""

    def __init__(self, stream: TextIO, enabled: bool = True) -> None:
        self.stream = stream
        self.enabled = enabled

    def __call__(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self.stream.write(json.dumps(record, default=_jsonable) + "\n")
        self.stream.flush()


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)


class StopFlag:
    """Set by SIGTERM/SIGINT, or by a STOP file next to the job (how the app cancels where there are no signals)."""

    def __init__(self, stop_file: Path | None = None) -> None:
        self.requested = False
        self.stop_file = stop_file

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: Any) -> None:  # noqa: ARG002
        self.requested = True

    def __call__(self) -> bool:
        if not self.requested and self.stop_file is not None and self.stop_file.exists():
            self.requested = True
        return self.requested


def _fault_hook() -> Callable[[int], None]:
    spec = os.environ.get(FAULT_ENV, "")
    if not spec:
        return lambda step: None
    kind, _, at = spec.partition(":")
    at_step = int(at or "1")

    def hook(step: int) -> None:
        if step >= at_step:
            if kind == "exit-at-step":
                os._exit(70)  # like a hard crash: no error line, no cleanup
            raise RuntimeError(f"fault injected by {FAULT_ENV} at step {step}")

    return hook


def _evaluate(model: Any, samples: list, device: Any, should_stop: Callable[[], bool]) -> dict[str, Any] | None:
    from tnseg_desktop.model.lite_predictor import LitePredictor
    from tnseg_desktop.training.evaluate import evaluate_probs

    if not samples:
        return None
    model.eval()
    result = evaluate_probs(LitePredictor(model, device).auto_probs, samples, should_stop=should_stop)
    if should_stop():
        raise Cancelled()
    return {"n": result["n"], "dice": result["dice_mean"], "iou": result["iou_mean"]}


def run_job(job: Job, emit: Emitter, stop: StopFlag) -> dict[str, Any]:
    """Train, evaluate before/after and write the model; returns the final record."""
    import torch

    from tnseg_desktop.model.device import choose_device
    from tnseg_desktop.model.lite_weights import load_lite, save_lite
    from tnseg_desktop.file_hash import sha256_of
    from tnseg_desktop.training import ddp
    from tnseg_desktop.training.job_data import FrameLoader
    from tnseg_desktop.training.trainer import LiteTrainer, TrainConfig, TrainingStopped

    if job.nice and hasattr(os, "nice"):
        os.nice(job.nice)  # the GUI keeps the CPU it needs to stay responsive
    if job.threads:
        torch.set_num_threads(int(job.threads))
    ctx = ddp.init_from_env()
    device = ddp.device_for(ctx, choose_device(job.device))
    emit.enabled = ctx is None or ctx.is_main
    should_stop = ddp.synced_stop(ctx, stop, device)
    emit({"event": "start", "base": job.base_name, "output": job.output_name, "device": str(device),
          "world_size": 1 if ctx is None else ctx.world_size, "budget": job.budget.to_json(), "pid": os.getpid()})

    loader = FrameLoader()
    try:
        train = loader.load_all(job.train, stop)
        val_user = loader.load_all(job.val_user, stop)
        val_base = loader.load_all(job.val_base, stop)
    finally:
        loader.close()
    if stop():
        raise Cancelled()
    emit({"event": "data", "train": len(train), "val_user": len(val_user), "val_base": len(val_base), "skipped": loader.skipped})
    if not train:
        raise UserFacingError("none of the training frames could be read (their source files may have moved).")

    model = load_lite(job.base_weights, device)
    is_main = ctx is None or ctx.is_main
    before: dict[str, Any] = {}
    if is_main:
        emit({"event": "phase", "phase": "evaluating-base"})
        before = {"val_user": _evaluate(model, val_user, device, stop), "val_base": _evaluate(model, val_base, device, stop)}
    ddp.barrier(ctx)

    settings = dict(job.train_config)
    cfg = TrainConfig(**{k: v for k, v in settings.items() if k in TrainConfig.__dataclass_fields__})
    cfg.steps, cfg.minutes = job.budget.steps, job.budget.minutes
    cfg.base_channels = int(model.config["base_channels"])
    cfg.head_hidden = int(model.config["head_hidden"])
    if "size" not in settings:
        cfg.size = int(model.input_size)
    if ctx is not None:
        cfg.seed += ctx.rank
    fault = _fault_hook()

    def progress(record: dict[str, Any]) -> None:
        fault(int(record.get("step", 0)))
        emit(record)

    emit({"event": "phase", "phase": "training"})
    select = _user_selection({s.id for s in val_user})
    trainer = LiteTrainer(cfg, ddp.shard(train, ctx), val_user + val_base, model=model.train(), device=device,
                          progress=progress, should_stop=should_stop, select=select if val_user else None)
    ddp.distribute(trainer, ctx)
    try:
        result = trainer.run()
    except TrainingStopped:
        raise Cancelled() from None
    if not is_main:
        return {"event": "done-worker", "rank": ctx.rank if ctx else 0}

    emit({"event": "phase", "phase": "evaluating"})
    if val_user and before.get("val_base"):
        after, alpha = _interpolate_with_base(trainer.model, load_lite(job.base_weights, device), INTERPOLATION_ALPHAS,
                                              val_user, val_base, before["val_base"]["dice"], job.max_base_drop, device, stop, emit)
    else:
        after = {"val_user": _evaluate(trainer.model, val_user, device, stop), "val_base": _evaluate(trainer.model, val_base, device, stop)}
        alpha = 1.0
    metrics = {"before": before, "after": after, "best_val_dice": result["best_val_dice"], "final_loss": result["final_loss"],
               "alpha": alpha}
    counts = {**job.counts(), "train_loaded": len(train), "val_user_loaded": len(val_user), "val_base_loaded": len(val_base),
              "skipped": len(loader.skipped)}
    if stop():
        raise Cancelled()
    decoder = _decoder_part(job, train, val_user, val_base, emit, stop, device) if job.decoder is not None else None
    # past this point the run is finished: a late SIGTERM must not leave a half-reported version
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    emit({"event": "phase", "phase": "saving"})
    info = {"parent": job.base_name, "name": job.output_name, "steps": result["steps"], "minutes": round(result["minutes"], 3),
            "device": str(device), "config": {k: v for k, v in vars(cfg).items() if k != "extra"}, "metrics": metrics,
            "data_counts": counts, "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if Path(job.output_weights).exists():  # made while this run trained: never written over
        raise UserFacingError("the output model file appeared while training ran; it was left as it is and this run's "
                              "model was not saved.", job.output_weights)
    path = save_lite(trainer.model, job.output_weights, info)
    done = {"event": "done", "output": str(path), "name": job.output_name, "sha256": sha256_of(path), "metrics": metrics,
            "data_counts": counts, "steps": result["steps"], "minutes": round(result["minutes"], 3)}
    if decoder is not None:
        done["decoder"] = decoder
    return done


# weights tried between the base (0) and the fine-tuned model (1); the fine-tuned end is tried first
INTERPOLATION_ALPHAS = (1.0, 0.75, 0.6, 0.5, 0.4, 0.3)


def _interpolate_with_base(model: Any, base: Any, alphas: tuple[float, ...], val_user: list, val_base: list,
                           base_before: float, max_base_drop: float, device: Any, stop: StopFlag,
                           emit: Emitter) -> tuple[dict[str, Any], float]:
    """Weight-space interpolation between the base and the fine-tuned network (WiSE-FT, Wortsman et al. 2022).

    Fine-tuning on a new site's frames gains there but forgets the base set more than the gate allows (busi_dev:
    +37 points on the new site, -4 on ddti/val); part of the way back to the base keeps most of the gain and the
    base set (alpha 0.5: +25 and -0.2). ``model`` is left holding the weights of the alpha the gate would pick
    (best held-out user Dice among those that keep the base Dice); returns its evaluation and alpha.
    """
    import torch

    tuned = {k: v.detach().clone() for k, v in model.state_dict().items()}
    start = base.state_dict()
    best: tuple[float, float, dict[str, Any], dict[str, Any]] | None = None
    for alpha in alphas:
        mixed = {k: (torch.lerp(start[k].to(v.dtype), v, alpha) if v.is_floating_point() else v) for k, v in tuned.items()}
        model.load_state_dict(mixed)
        result = {"val_user": _evaluate(model, val_user, device, stop), "val_base": _evaluate(model, val_base, device, stop)}
        keeps = result["val_base"]["dice"] >= base_before - max_base_drop
        score = result["val_user"]["dice"] - (0.0 if keeps else 1.0)
        emit({"event": "interpolation", "alpha": alpha, "val_user": result["val_user"]["dice"],
              "val_base": result["val_base"]["dice"]})
        if best is None or score > best[0]:
            best = (score, alpha, result, mixed)
    assert best is not None
    _, alpha, result, weights = best
    model.load_state_dict(weights)
    return result, alpha


def _user_selection(user_ids: set[str]) -> Callable[[list[dict[str, Any]]], float]:
    """Keep the checkpoint best on the user's held-out frames; the base set is kept afterwards by interpolation
    (_interpolate_with_base). A mean over all frames would let a large base set (e.g. 92 thyroid frames against
    10 breast frames from a new site) choose the unchanged model."""

    def score(rows: list[dict[str, Any]]) -> float:
        user = [r["dice"] for r in rows if r["id"] in user_ids]
        return sum(user) / len(user) if user else 0.0

    return score


def _decoder_part(job: Job, train: list, val_user: list, val_base: list, emit: Emitter, stop: StopFlag, device: Any) -> dict[str, Any]:
    """The decoder's record; a failure there is reported in it and does not cost the automatic mask's result."""
    from tnseg_desktop.training.decoder_part import DecoderStopped, run_decoder_part

    assert job.decoder is not None
    try:
        return run_decoder_part(job.decoder, job.train, train, val_user, val_base, emit, stop, device)
    except DecoderStopped:
        raise Cancelled() from None
    except Exception as exc:  # noqa: BLE001 -- the auto part is finished and still saved
        if stop():
            raise Cancelled() from None
        traceback.print_exc(file=sys.stderr)
        Path(job.decoder.output_weights).unlink(missing_ok=True)
        record = _error_record(exc)
        return {"error": record["message"], "kind": record["kind"]}


def _error_record(exc: BaseException) -> dict[str, Any]:
    from tnseg_desktop.model.device import is_out_of_memory

    if isinstance(exc, UserFacingError):
        return {"event": "error", "kind": "user", "message": exc.one_line()}
    if isinstance(exc, MemoryError) or is_out_of_memory(exc):
        return {"event": "error", "kind": "out-of-memory",
                "message": "Training ran out of memory; try a smaller batch or image size, or close other programs."}
    return {"event": "error", "kind": "crash", "message": f"Training failed: {type(exc).__name__}: {exc}"}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    # stray prints from libraries must not corrupt the JSON-line protocol
    emit = Emitter(sys.stdout)
    sys.stdout = sys.stderr
    if len(args) != 1:
        emit({"event": "error", "kind": "user", "message": "usage: python -m tnseg_desktop.training.worker JOB.json"})
        return EXIT_FAILED
    stop = StopFlag(stop_file_for(args[0]))
    stop.install()
    try:
        job = read_job(args[0])
        record = run_job(job, emit, stop)
        emit(record)
        return EXIT_OK
    except Cancelled:
        emit({"event": "cancelled"})
        return EXIT_CANCELLED
    except BaseException as exc:  # noqa: BLE001 -- everything is reported to the app, nothing propagates
        if stop():
            # work interrupted by the user's stop request may fail on its way out; that is still a cancel
            traceback.print_exc(file=sys.stderr)
            emit({"event": "cancelled"})
            return EXIT_CANCELLED
        traceback.print_exc(file=sys.stderr)
        try:
            emit(_error_record(exc))
        except Exception:  # the pipe to the app may be gone; the exit code still tells
            pass
        return EXIT_FAILED
    finally:
        if "torch" in sys.modules:
            from tnseg_desktop.training import ddp

            ddp.shutdown()


if __name__ == "__main__":
    sys.exit(main())
