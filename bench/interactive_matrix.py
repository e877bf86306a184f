"""NoC and Dice for every (refiner, start) pair on one data folder, sharing one LiteMedSAM embedding per frame.

``tnseg-desktop eval-interactive`` measures one pair per run and encodes every
frame again; here the frames are encoded once (the refiners and tnseg-med
share the embedding cache, as in the app) and each pair then costs only
decoder passes. The per-pair figures are those of ``eval-interactive``
(same simulation: training/interactive_eval.py).

    python bench/interactive_matrix.py --data ../shared/data/ddti/val --json out.json \
        --refiners litemedsam-thyroid,litemedsam,litemedsam+tnseg-lite,tnseg-lite --starts box,empty,auto --auto tnseg-med
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from tnseg_desktop.engine.embedding_cache import EmbeddingCache  # noqa: E402
from tnseg_desktop.engine.refiner_choice import HYBRID, LITE, LITEMEDSAM_NAMES, make_refiner  # noqa: E402
from tnseg_desktop.training.data import load_folder  # noqa: E402
from tnseg_desktop.training.interactive_eval import evaluate_interactive  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--json", dest="json_out", required=True)
    ap.add_argument("--refiners", default="litemedsam-thyroid,litemedsam")
    ap.add_argument("--starts", default="box,empty,auto")
    ap.add_argument("--auto", default="tnseg-lite", help="automatic model for --start auto")
    ap.add_argument("--max-clicks", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--limit", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    samples = load_folder(args.data)
    if args.limit:
        samples = samples[: args.limit]
    cache = EmbeddingCache(max_bytes=4 * 1024**3)
    refiners = {}
    for name in args.refiners.split(","):
        if name in LITEMEDSAM_NAMES:
            from tnseg_desktop.engine.litemedsam_refiner import make_litemedsam_refiner

            refiners[name] = make_litemedsam_refiner(name, cache=cache)
        else:
            refiners[name] = make_refiner(name, "cpu")
            if name == HYBRID:
                refiners[name].box_refiner.cache = cache
    shared = next((r for r in refiners.values() if getattr(r, "name", "") in LITEMEDSAM_NAMES), None)
    t0 = time.perf_counter()
    if shared is not None:
        for s in samples:
            shared.prepare(s.image)
    encode_s = time.perf_counter() - t0
    auto_probs = None
    if "auto" in args.starts.split(","):
        from tnseg_desktop.model.device import choose_device
        from tnseg_desktop.model.resolve import load_auto_segmenter

        auto = load_auto_segmenter(args.auto, choose_device("cpu"))
        if hasattr(auto, "set_embed") and shared is not None:
            auto.set_embed(shared.embedding)  # tnseg-med reads the refiner's embeddings, as in the app
        from tnseg_desktop.engine.sam_polish import polished_if_default

        if HYBRID in refiners:  # as in the app: the default pair is outlined by the box tool's LiteMedSAM
            auto = polished_if_default(auto, args.auto, "cpu", refiner=refiners[HYBRID].box_refiner)
        auto_probs = auto.auto_probs
    out = {"data": args.data, "n": len(samples), "threads": args.threads, "encode_s": round(encode_s, 1), "auto": args.auto, "pairs": {}}
    for name, refiner in refiners.items():
        for start in args.starts.split(","):
            t = time.perf_counter()
            r = evaluate_interactive(refiner, samples, start=start, auto_probs=auto_probs if start == "auto" else None, max_clicks=args.max_clicks)
            r.pop("per_image", None)
            r["seconds"] = round(time.perf_counter() - t, 1)
            out["pairs"][f"{name}|{start}"] = r
            d = r["dice_at_clicks"]
            extra = f" dice_after_box {r['dice_after_box']:.3f}" if "dice_after_box" in r else ""
            print(f"{name:24s} {start:6s} NoC@85 {r['noc85']:.2f} NoC@90 {r['noc90']:.2f} Dice@0 {d[0]:.3f} Dice@1 {d[1]:.3f} Dice@3 {d[3]:.3f} Dice@5 {d[5]:.3f}{extra} ({r['seconds']} s)", flush=True)
    Path(args.json_out).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
