"""How much "Retrain on my edits" gains on more frames of the same kind (DDTI), through the real store and worker.

    python bench/retrain_same_site.py --json OUT.json [--data ../shared/data/ddti] [--size 128] [--batch 8]
        [--base-minutes 8] [--retrain-minutes 8] [--scratch-minutes M] [--seed 0]
        [--base-weights FILE] [--retrain-lr LR] [--retrain-set KEY=VALUE ...]

The figures in the README come from ``--size 128 --batch 8 --base-minutes 8 --retrain-minutes 10
--threads 1``; ``--base-weights`` (a base saved by an earlier run) with ``--scratch-minutes 0``
compares retraining settings on one base.

1. Split ddti/train by patient group (seeded): 100 frames for the base model,
   100 other frames as the user's edits, 40 more as the base validation set.
2. Base: tnseg-lite trained from scratch on the 100 base frames.
3. The 100 edit frames are opened as image-folder cines (one per frame size),
   entered into a fresh annotation store as accepted edits with their true
   masks, and "Retrain on my edits" runs: the store plans the job (20 % of the
   edits held out, replay of the base frames), the worker process trains, the
   gate decides.
4. The same network trained from scratch on all 200 frames.
Dice on ddti/val (never seen by any step) before and after, and minutes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from tnseg_desktop.io import open_source  # noqa: E402
from tnseg_desktop.model.lite_predictor import LitePredictor  # noqa: E402
from tnseg_desktop.model.lite_weights import load_lite, save_lite  # noqa: E402
from tnseg_desktop.store import AnnotationStore, EditInfo  # noqa: E402
from tnseg_desktop.training import retrain, versions  # noqa: E402
from tnseg_desktop.training.data import Sample, list_pairs, load_folder, read_gray  # noqa: E402
from tnseg_desktop.training.evaluate import evaluate_probs  # noqa: E402
from tnseg_desktop.training.trainer import LiteTrainer, TrainConfig  # noqa: E402


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def split_by_patient(data: Path, seed: int, n_base: int, n_user: int, n_base_val: int) -> tuple[list, list, list]:
    """Frame ids of ddti/train in three disjoint sets, whole patient groups at a time."""
    groups: dict[str, list[str]] = defaultdict(list)
    with open(data / "manifest.csv", encoding="utf-8") as fh:
        header = fh.readline().strip().split(",")
        for line in fh:
            row = dict(zip(header, line.strip().split(",")))
            if row["split"] == "train":
                groups[row["patient_group"]].append(row["id"])
    names = sorted(groups)
    random.Random(seed).shuffle(names)
    wanted = [n_base, n_user, n_base_val]
    out: list[list[str]] = [[], [], []]
    k = 0
    for g in names:
        while k < 3 and len(out[k]) >= wanted[k]:
            k += 1
        if k == 3:
            break
        out[k].extend(groups[g])
    return out[0][:n_base], out[1][:n_user], out[2][:n_base_val]


def link_folder(pairs: dict[str, tuple[Path, Path]], ids: list[str], dest: Path) -> Path:
    (dest / "images").mkdir(parents=True, exist_ok=True)
    (dest / "masks").mkdir(parents=True, exist_ok=True)
    for i in ids:
        img, mask = pairs[i]
        os.symlink(img, dest / "images" / img.name)
        os.symlink(mask, dest / "masks" / mask.name)
    return dest


def cfg_for(args: argparse.Namespace, minutes: float, lr: float) -> TrainConfig:
    return TrainConfig(size=args.size, batch=args.batch, lr=lr, minutes=minutes, warmup=50, seed=args.seed, val_every=100)


def train_from_scratch(train: list[Sample], val: list[Sample], cfg: TrainConfig) -> tuple[torch.nn.Module, float]:
    torch.manual_seed(cfg.seed)
    t0 = time.monotonic()
    trainer = LiteTrainer(cfg, train, val, device="cpu",
                          progress=lambda r: log(f"  step {r['step']} val {r['val_dice']:.3f}") if "val_dice" in r else None)
    trainer.run()
    return trainer.model, (time.monotonic() - t0) / 60.0


def dice_on(model: torch.nn.Module, samples: list[Sample]) -> float:
    return float(evaluate_probs(LitePredictor(model, "cpu").auto_probs, samples)["dice_mean"])


def enter_edits(store: AnnotationStore, pairs: dict[str, tuple[Path, Path]], ids: list[str], root: Path) -> int:
    """The user's frames as image-folder cines (one per frame size), each frame accepted with its true mask."""
    by_shape: dict[tuple[int, int], list[str]] = defaultdict(list)
    for i in ids:
        by_shape[read_gray(pairs[i][0]).shape].append(i)
    n = 0
    for (h, w), members in sorted(by_shape.items()):
        folder = root / f"cine_{w}x{h}"
        folder.mkdir(parents=True)
        for k, i in enumerate(members):
            os.symlink(pairs[i][0], folder / f"frame{k:04d}.png")
        cine = open_source(folder)
        digest = hashlib.sha256(b"".join((folder / f"frame{k:04d}.png").read_bytes() for k in range(len(members)))).hexdigest()
        study = store.add_study(cine.meta, digest)
        for k, i in enumerate(members):
            mask = read_gray(pairs[i][1]) > 127
            store.accept(study, k, mask, edit_info=EditInfo(tool="bench", model_name="bench-base"))
            n += 1
        cine.close()
    return n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", required=True, dest="json_out")
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "ddti"))
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--base-minutes", type=float, default=8.0)
    ap.add_argument("--retrain-minutes", type=float, default=8.0)
    ap.add_argument("--scratch-minutes", type=float, default=None, help="default: base + retrain minutes (the same compute)")
    ap.add_argument("--base-weights", default=None, help="reuse a base model trained by an earlier run (skips step 2)")
    ap.add_argument("--retrain-lr", type=float, default=None, help="default: the app's fine-tuning learning rate")
    ap.add_argument("--retrain-set", action="append", default=[], metavar="KEY=VALUE",
                    help="override one training setting of the retraining job (e.g. p_auto=0.8), repeatable")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit-val", type=int, default=None, help="evaluate on the first N val frames only (smoke runs)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = Path(args.data)
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    work = Path(tempfile.mkdtemp(prefix="retrain-gain-"))
    os.environ["TNSEG_DATA_DIR"] = str(work / "userdata")  # the worker and the store stay inside the bench folder

    pairs = {sid: (ip, mp) for sid, ip, mp in list_pairs(data / "train") if mp is not None}
    base_ids, user_ids, base_val_ids = split_by_patient(data, args.seed, 100, 100, 40)
    log(f"split: base {len(base_ids)}, user edits {len(user_ids)}, base validation {len(base_val_ids)}; work in {work}")
    replay = work / "replay"
    link_folder(pairs, base_ids, replay / "train")
    link_folder(pairs, base_val_ids, replay / "val")
    base_train = load_folder(replay / "train")
    base_val = load_folder(replay / "val")
    test = load_folder(data / "val")[: args.limit_val]

    if args.base_weights:
        base_model = load_lite(args.base_weights)
        base_min = float(base_model.info.get("minutes", 0.0))
        log(f"base: reusing {args.base_weights}")
    else:
        log(f"base: training on {len(base_train)} frames for {args.base_minutes} min")
        base_model, base_min = train_from_scratch(base_train, base_val, cfg_for(args, args.base_minutes, 2e-3))
    base_path = save_lite(base_model, work / "bench-base.safetensors", {"bench": "retrain_gain base", "minutes": base_min})
    dice_before = dice_on(base_model, test)
    log(f"base Dice on val {dice_before:.4f}")

    store = AnnotationStore(work / "store")
    n_edits = enter_edits(store, pairs, user_ids, work / "cines")
    versions.ensure_base_version(store, "bench-base", base_path)
    settings = retrain.RetrainSettings(replay_root=replay, minutes=args.retrain_minutes, device="cpu", threads=args.threads,
                                       nice=0, seed=args.seed)
    settings.train_config.update({"size": args.size, "batch": args.batch})
    if args.retrain_lr:
        settings.train_config["lr"] = args.retrain_lr
    for item in args.retrain_set:
        key, _, value = item.partition("=")
        settings.train_config[key.strip()] = json.loads(value)
    plan = retrain.plan_retrain(store, settings)
    log(f"retrain: {plan.n_new} accepted edits, {len(plan.new_train)} to train, {len(plan.new_val)} held out; {plan.reason}")
    t0 = time.monotonic()
    steps = {"n": 0}

    def on_event(e: dict) -> None:
        if e.get("event") == "step":
            steps["n"] = e["step"]
        if e.get("event") in ("val", "data", "phase", "error", "done") or "val_dice" in e:
            log(f"  worker: {json.dumps({k: v for k, v in e.items() if k not in ('metrics',)})[:300]}")

    result = retrain.retrain(store, settings, on_event=on_event)
    retrain_wall = (time.monotonic() - t0) / 60.0
    if result.status == "failed":
        log(f"retrain failed: {result.message}")
        return 1
    new_version = store.model_version(result.run.result_version)
    dice_after = dice_on(load_lite(new_version.file), test)
    log(f"after retrain ({result.status}): Dice on val {dice_after:.4f} ({retrain_wall:.1f} min)")

    scratch_minutes = args.scratch_minutes if args.scratch_minutes is not None else base_min + args.retrain_minutes
    scratch = None
    if scratch_minutes > 0:
        all_train = base_train + load_folder(link_folder(pairs, user_ids, work / "user_folder"))
        log(f"scratch: training on {len(all_train)} frames for {scratch_minutes:.1f} min")
        scratch_model, scratch_min = train_from_scratch(all_train, base_val, cfg_for(args, scratch_minutes, 2e-3))
        scratch = {"frames": len(all_train), "dice": round(dice_on(scratch_model, test), 4), "minutes": round(scratch_min, 2)}
        log(f"scratch Dice on val {scratch['dice']:.4f}")

    gate = new_version.metrics.get("gate", {})
    out = {
        "data": str(data), "val_frames": len(test), "seed": args.seed, "size": args.size, "batch": args.batch,
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "load_average_at_end": os.getloadavg()},
        "base": {"frames": len(base_train), "minutes": round(base_min, 2)},
        "edits": {"accepted": n_edits, "trained_on": new_version.data_counts.get("train_user"),
                  "held_out": new_version.data_counts.get("val_user"), "replay": new_version.data_counts.get("train_replay")},
        "dice_before": round(dice_before, 4),
        "dice_after": round(dice_after, 4),
        "gain_points": round(100 * (dice_after - dice_before), 2),
        "minutes": round(retrain_wall, 2),
        "retrain_training_minutes": new_version.metrics.get("minutes"),
        "retrain_steps": new_version.metrics.get("steps"),
        "promoted": result.status == "promoted",
        "gate": gate,
        "retrain_config": settings.train_config,
        "scratch_200": scratch,
        "command": "python bench/retrain_same_site.py " + " ".join(sys.argv[1:]),
    }
    Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json_out).write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
