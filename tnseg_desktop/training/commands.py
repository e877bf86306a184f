"""CLI handlers: train, eval (DESIGN.md section 5); segment lives in engine/segment_command.py, bench in bench_runner.py."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

from tnseg_desktop.errors import UserFacingError

# train's command-line options -> TrainConfig fields
_CONFIG_FROM_OPTIONS = (
    ("size", "size"), ("batch", "batch"), ("lr", "lr"), ("val_every", "val_every"), ("p_auto", "p_auto"),
    ("object_crop", "p_object_crop"), ("self_prior", "p_self_prior"), ("warmup", "warmup"),
    ("click_rounds", "max_click_rounds"), ("ema", "ema"), ("hard_weighting", "hard_weighting"),
)
_ZERO_IS_DEFAULT = {"size", "batch", "lr", "val_every"}


def _print_progress(record: dict[str, Any]) -> None:
    if record.get("event") == "val" or "val_dice" in record:
        print(f"step {record['step']:>6}  val Dice {record['val_dice']:.4f}  IoU {record['val_iou']:.4f}  (best {record['best_val_dice']:.4f})", flush=True)
    elif record["step"] % 25 == 0:
        eta = record.get("eta_s")
        eta_txt = f"{eta / 60:.1f} min" if eta is not None else "?"
        print(f"step {record['step']:>6}  loss {record['loss']:.4f}  lr {record['lr']:.2e}  elapsed {record['elapsed_s'] / 60:.1f} min  eta {eta_txt}", flush=True)


def _out_path(out: str) -> Path:
    p = Path(out)
    if p.suffix == ".safetensors" or p.parent != Path("."):
        return p if p.suffix == ".safetensors" else p.with_suffix(".safetensors")
    from tnseg_desktop.paths import user_models_dir

    return user_models_dir() / f"{out}.safetensors"


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from tnseg_desktop.model.device import choose_device
    from tnseg_desktop.model.lite_weights import load_lite, save_lite
    from tnseg_desktop.model.resolve import resolve_lite_weights
    from tnseg_desktop.training.data import load_folder
    from tnseg_desktop.training.trainer import LiteTrainer, TrainConfig, TrainingStopped, load_checkpoint, save_checkpoint

    if args.threads:
        torch.set_num_threads(args.threads)
    device = choose_device(args.device)
    train = [s for folder in args.data for s in load_folder(folder)]
    val = load_folder(args.val)
    cfg = TrainConfig(seed=args.seed)
    for option, name in _CONFIG_FROM_OPTIONS:
        value = getattr(args, option, None)
        # size, batch, lr and val_every of 0 mean "the default", like their absence
        if value is not None and not (option in _ZERO_IS_DEFAULT and not value):
            setattr(cfg, name, value)
    cfg.steps, cfg.minutes = args.steps, args.minutes
    if cfg.steps is None and cfg.minutes is None:
        cfg.steps = 1000
    out = _out_path(args.out)
    model = None
    if args.base:
        model = load_lite(resolve_lite_weights(args.base), device)
        cfg.base_channels = model.config["base_channels"]
        cfg.head_hidden = model.config["head_hidden"]
    stop = {"flag": False}

    def on_sigint(signum, frame):  # noqa: ARG001
        stop["flag"] = True

    signal.signal(signal.SIGINT, on_sigint)
    signal.signal(signal.SIGTERM, on_sigint)
    snapshots = Path(args.snapshots) if getattr(args, "snapshots", None) else None

    def progress(record: dict) -> None:
        _print_progress(record)
        if snapshots is not None and "val_dice" in record:
            # every validated state is kept so a later choice can use another criterion (e.g. NoC from eval-interactive)
            save_lite(trainer.eval_model, snapshots / f"step{record['step']:06d}.safetensors", {"step": record["step"], "val_dice": record["val_dice"]})

    trainer = LiteTrainer(cfg, train, val, model=model, device=device, progress=progress, should_stop=lambda: stop["flag"])
    ckpt_path = out.with_suffix(".ckpt")
    if args.resume:
        trainer.restore(load_checkpoint(args.resume))
        print(f"resumed at step {trainer.step}", flush=True)
    print(f"training tnseg-lite on {len(train)} frames ({len(val)} for validation) on {device}, size {cfg.size}, batch {cfg.batch}, budget {cfg.steps or ''} steps {cfg.minutes or ''} min", flush=True)
    t0 = time.time()
    try:
        result = trainer.run()
    except TrainingStopped as stopped:
        save_checkpoint(stopped.checkpoint, ckpt_path)
        print(f"interrupted at step {trainer.step}; resume with --resume {ckpt_path}", file=sys.stderr)
        return 130
    info = {
        "command": "tnseg-desktop " + " ".join(sys.argv[1:]) if sys.argv and sys.argv[0].endswith(("tnseg-desktop", "__main__.py")) else None,
        "train_frames": len(train),
        "val_frames": len(val),
        "device": str(device),
        "wall_minutes": round((time.time() - t0) / 60.0, 2),
        "config": {k: v for k, v in vars(cfg).items()},
        **result,
    }
    save_lite(trainer.model, out, info)
    if ckpt_path.exists():
        ckpt_path.unlink()
    print(json.dumps({"out": str(out), **{k: info[k] for k in ("steps", "minutes", "best_val_dice")}}), flush=True)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from tnseg_desktop.model.device import choose_device
    from tnseg_desktop.model.resolve import load_auto_segmenter
    from tnseg_desktop.training.data import load_folder
    from tnseg_desktop.training.evaluate import evaluate_probs

    device = choose_device(args.device)
    samples = load_folder(args.data)
    from tnseg_desktop.engine.sam_polish import polished_if_default

    seg = polished_if_default(load_auto_segmenter(args.model, device, prompt=args.prompt, tta=args.tta), args.model, device, args.prompt)
    t0 = time.time()
    result = evaluate_probs(seg.auto_probs, samples)
    out = {"model": args.model, "data": str(args.data), "device": str(device), "tta": bool(args.tta), "seconds": round(time.time() - t0, 2), **result}
    Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json_out).write_text(json.dumps(out, indent=2))
    print(f"{args.model} on {args.data}: n={out['n']} Dice {out['dice_mean']:.4f} IoU {out['iou_mean']:.4f}")
    return 0
