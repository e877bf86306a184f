"""Automatic masks on one folder: tnseg-med (no text / "thyroid nodule"), tnseg-lite and their mean, at frame size.

Frames are encoded once (LiteMedSAM, in memory) and tnseg-med reads that
embedding, as the app does; the figures are Dice and IoU of p >= 0.5 against
the folder's masks (DESIGN.md metric definitions), plus the median time of
tnseg-med's head per frame on top of the embedding and of one embedding.

    python bench/auto_masks.py --data ../shared/data/ddti/val --json out.json
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
from tnseg_desktop.engine.sam_polish import SamPolished  # noqa: E402
from tnseg_desktop.model.resolve import load_auto_segmenter, load_tnseg_med_segmenter, text_condition_for  # noqa: E402
from tnseg_desktop.training.data import load_folder  # noqa: E402
from tnseg_desktop.training.metrics import dice, iou  # noqa: E402


def _object_array(maps: list[np.ndarray]) -> np.ndarray:
    """One map per entry, whatever their shapes (np.array would stack same-shaped maps or fail on a mix)."""
    out = np.empty(len(maps), dtype=object)
    for i, m in enumerate(maps):
        out[i] = m.astype(np.float16)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--med", default="tnseg-med", help="tnseg-med name or weights file")
    ap.add_argument("--lite", default="tnseg-lite")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", dest="json_out", required=True)
    ap.add_argument("--save-probs", default="", help="also write every probability map to this .npz (for offline checks)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    samples = load_folder(args.data)[: args.limit or None]
    refiner = make_litemedsam_refiner("litemedsam", cache=EmbeddingCache(max_bytes=4 * 1024**3))
    embed_ms = []
    for s in samples:
        t = time.perf_counter()
        refiner.prepare(s.image)
        embed_ms.append(1000 * (time.perf_counter() - t))
    med = load_tnseg_med_segmenter(args.med, device, embed=refiner.embedding)
    med_text = med.with_condition(text_condition_for("thyroid nodule")[1])
    lite = load_auto_segmenter(args.lite, device)
    lite_tta = load_auto_segmenter(args.lite, device, tta=True)
    ens = load_auto_segmenter("tnseg-med+lite", device)  # the app's default, as the app builds it
    ens.set_embed(refiner.embedding)
    box_tool = make_litemedsam_refiner("litemedsam-thyroid", cache=refiner.cache)  # same encoder: same cached embeddings
    polished = SamPolished(ens, box_tool)
    ens_ms, polish_ms = [], []
    probs: dict[str, list[np.ndarray]] = {"tnseg-med": [], "tnseg-med 'thyroid nodule'": [], "tnseg-lite": [], "tnseg-lite flip-TTA": []}
    head_ms = []
    for s in samples:
        t = time.perf_counter()
        probs["tnseg-med"].append(med.auto_probs([s.image])[0])
        head_ms.append(1000 * (time.perf_counter() - t))
        probs["tnseg-med 'thyroid nodule'"].append(med_text.auto_probs([s.image])[0])
        probs["tnseg-lite"].append(lite.auto_probs([s.image])[0])
        probs["tnseg-lite flip-TTA"].append(lite_tta.auto_probs([s.image])[0])
        t = time.perf_counter()
        probs.setdefault("tnseg-med+lite (default)", []).append(ens.auto_probs([s.image])[0])
        ens_ms.append(1000 * (time.perf_counter() - t))
        t = time.perf_counter()
        probs.setdefault("tnseg-med+lite, SAM-outlined (the app's mask)", []).append(polished.polish(s.image, probs["tnseg-med+lite (default)"][-1]))
        polish_ms.append(1000 * (time.perf_counter() - t))
    probs["mean of tnseg-med and tnseg-lite"] = [(a + b) / 2 for a, b in zip(probs["tnseg-med"], probs["tnseg-lite"])]
    probs["mean of tnseg-med and tnseg-lite TTA"] = [(a + b) / 2 for a, b in zip(probs["tnseg-med"], probs["tnseg-lite flip-TTA"])]
    if args.save_probs:
        np.savez_compressed(args.save_probs, **{k.replace(" ", "_").replace("'", ""): _object_array(v) for k, v in probs.items()})
    out = {"data": args.data, "n": len(samples), "threads": args.threads,
           "embed_ms_median": round(statistics.median(embed_ms), 1), "med_head_ms_median": round(statistics.median(head_ms), 1),
           "default_ms_median": round(statistics.median(ens_ms), 1),
           "polish_ms_median": round(statistics.median(polish_ms), 1), "models": {}}
    for name, ps in probs.items():
        d = [dice(p >= 0.5, s.mask) for p, s in zip(ps, samples)]
        j = [iou(p >= 0.5, s.mask) for p, s in zip(ps, samples)]
        out["models"][name] = {"dice": round(float(np.mean(d)), 4), "iou": round(float(np.mean(j)), 4),
                               "dice_median": round(float(np.median(d)), 4), "below_0.5": int(sum(x < 0.5 for x in d))}
        print(f"{name:36s} Dice {np.mean(d):.4f} IoU {np.mean(j):.4f} median {np.median(d):.3f} frames<0.5 {sum(x < 0.5 for x in d)}", flush=True)
    print(f"embedding {out['embed_ms_median']} ms, tnseg-med head {out['med_head_ms_median']} ms, the default tnseg-med+lite "
          f"{out['default_ms_median']} ms on top of the embedding, its SAM outline {out['polish_ms_median']} ms more, "
          f"per frame (median, {args.threads} thread)")
    Path(args.json_out).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
