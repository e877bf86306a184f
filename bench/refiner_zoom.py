"""Compare tnseg-lite click refinement with and without the zoom-in crop.

    python bench/refiner_zoom.py --data ../shared/data/ddti/val --model tnseg-lite --limit 30 --max-clicks 10

Prints NoC@85/90 and Dice after k clicks for both settings, from the auto mask
and from empty.
"""

from __future__ import annotations

import argparse
import json

from tnseg_desktop.engine.lite_refiner import LiteRefiner
from tnseg_desktop.model.device import choose_device
from tnseg_desktop.model.lite_predictor import LitePredictor
from tnseg_desktop.model.lite_weights import load_lite
from tnseg_desktop.model.resolve import resolve_lite_weights
from tnseg_desktop.training.data import load_folder
from tnseg_desktop.training.interactive_eval import evaluate_interactive


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--model", default="tnseg-lite")
    ap.add_argument("--limit", type=int, default=30)
    ap.add_argument("--max-clicks", type=int, default=10)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    device = choose_device("auto")
    predictor = LitePredictor(load_lite(resolve_lite_weights(args.model), device), device)
    samples = load_folder(args.data)[: args.limit]
    out = {}
    for zoom in (True, False):
        refiner = LiteRefiner(predictor, zoom=zoom)
        for start in ("auto", "empty"):
            r = evaluate_interactive(refiner, samples, start=start, auto_probs=predictor.auto_probs if start == "auto" else None, max_clicks=args.max_clicks)
            key = f"zoom={zoom} start={start}"
            out[key] = {"noc85": r["noc85"], "noc90": r["noc90"], "dice_at_clicks": [round(x, 4) for x in r["dice_at_clicks"]]}
            d = r["dice_at_clicks"]
            print(f"{key:24s} NoC@85 {r['noc85']:.2f} NoC@90 {r['noc90']:.2f} Dice@0 {d[0]:.3f} @1 {d[1]:.3f} @3 {d[3]:.3f} @5 {d[5]:.3f}", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)


if __name__ == "__main__":
    main()
