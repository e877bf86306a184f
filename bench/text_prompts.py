"""Text prompts on tnseg-med: Dice per phrase, the gland around the nodule, and text -> LiteMedSAM box.

Every frame is encoded once (LiteMedSAM, in memory) and shared by tnseg-med
and the refiner, as in the app. For each phrase: Dice of the map's own mask
(p >= 0.5) and of the refined mask (the map's largest component as a box for
the refiner, MedCLIP-SAMv2's flow: engine/text_prompt.py), against the masks
of the folder whose target the phrase names. On nodule folders it also
reports the share of true nodule pixels inside the predicted gland.

    python bench/text_prompts.py --nodules ../shared/data/ddti/val --glands TG3K_TEST_SUBSET --json out.json

Phrases: the canonical one per target, the held-back paraphrases of the
tests (never trained on, never in the lookup's lists) and, for the refusal
count, 20 off-target phrases.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from tnseg_desktop.engine.embedding_cache import EmbeddingCache  # noqa: E402
from tnseg_desktop.engine.litemedsam_refiner import make_litemedsam_refiner  # noqa: E402
from tnseg_desktop.engine.text_prompt import NothingFound, text_to_mask  # noqa: E402
from tnseg_desktop.model.prompt_targets import UnknownTarget  # noqa: E402
from tnseg_desktop.model.resolve import load_auto_segmenter  # noqa: E402
from tnseg_desktop.training.data import load_folder  # noqa: E402
from tnseg_desktop.training.metrics import dice  # noqa: E402

CANONICAL = {"nodule": "thyroid nodule", "gland": "thyroid gland"}
HELD_BACK = {
    "nodule": ["nodule in the thyroid", "thyroid cyst", "solid hypoechoic lesion", "complex nodule", "suspicious lesion", "thyroid nodules"],
    "gland": ["thyroid glands", "whole thyroid gland", "lobe of the thyroid", "thyroid region", "the whole gland", "right lobe"],
}
OFF_TARGET = ["carotid", "fat layer", "breast tissue", "vessel", "artery", "spine", "hello", "colour bar", "parathyroid", "femur",
              "aorta", "tendon", "nerve", "cornea", "rib", "appendix", "bowel loop", "pizza", "keyboard", "sky"]


def _mean(xs: list[float]) -> float:
    return round(float(np.mean(xs)), 4) if xs else float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodules", required=True, help="images/ + masks/ of nodules (ddti/val)")
    ap.add_argument("--glands", default=None, help="images/ + masks/ of thyroid glands (TG3K frames)")
    ap.add_argument("--model", default="tnseg-med", help="tnseg-med, a tnseg-med weights file, or tnseg-med+lite")
    ap.add_argument("--refiner", default="litemedsam-thyroid")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", dest="json_out", required=True)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    refiner = make_litemedsam_refiner(args.refiner, cache=EmbeddingCache(max_bytes=4 * 1024**3))
    med = load_auto_segmenter(args.model, torch.device("cpu"))
    med.set_embed(refiner.embedding)  # one encoder pass per frame, shared with the refiner as in the app
    folders = {"nodule": load_folder(args.nodules)}
    if args.glands:
        folders["gland"] = load_folder(args.glands)
    if args.limit:
        folders = {k: v[: args.limit] for k, v in folders.items()}
    t0 = time.perf_counter()
    for samples in folders.values():
        for s in samples:
            refiner.prepare(s.image)
    out: dict = {"model": args.model, "refiner": args.refiner, "threads": args.threads,
                 "n": {k: len(v) for k, v in folders.items()}, "encode_s": round(time.perf_counter() - t0, 1), "phrases": {}}
    no_text = [dice(p >= 0.5, s.mask) for s, p in zip(folders["nodule"], med.auto_probs([s.image for s in folders["nodule"]]))]
    out["nodule_no_text_dice"] = _mean(no_text)
    print(f"no text (learned default) on nodules: Dice {out['nodule_no_text_dice']:.4f}", flush=True)
    for target, samples in folders.items():
        for phrase in [CANONICAL[target], *HELD_BACK[target]]:
            maps, refined, inside = [], [], []
            try:
                for s in samples:
                    prob = med.prob_map(s.image, phrase)
                    maps.append(dice(prob >= 0.5, s.mask))
                    try:
                        refined.append(dice(text_to_mask(s.image, phrase, None, refiner, med), s.mask))
                    except NothingFound:
                        refined.append(0.0)
            except UnknownTarget as exc:
                out["phrases"][phrase] = {"target": target, "refused": str(exc)}
                print(f"{phrase!r}: refused ({exc})", flush=True)
                continue
            out["phrases"][phrase] = {"target": target, "map_dice": _mean(maps), "refined_dice": _mean(refined),
                                      "map_dice_median": round(statistics.median(maps), 4)}
            print(f"{target:6s} {phrase!r:28s} map Dice {_mean(maps):.4f}  text->{args.refiner} {_mean(refined):.4f}", flush=True)
    for s in folders["nodule"]:
        gland = med.prob_map(s.image, CANONICAL["gland"]) >= 0.5
        if s.mask.any():
            inside.append(float((gland & s.mask).sum() / s.mask.sum()))
    out["nodule_pixels_inside_gland"] = _mean(inside)
    print(f"share of true nodule pixels inside the predicted gland (nodule frames): {out['nodule_pixels_inside_gland']:.4f}", flush=True)
    refused = 0
    for phrase in OFF_TARGET:
        try:
            med.prob_map(folders["nodule"][0].image, phrase)
        except UnknownTarget:
            refused += 1
    out["off_target_refused"] = f"{refused}/{len(OFF_TARGET)}"
    print(f"off-target phrases refused: {refused}/{len(OFF_TARGET)}", flush=True)
    Path(args.json_out).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
