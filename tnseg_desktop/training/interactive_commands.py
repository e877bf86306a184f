"""CLI handler: ``tnseg-desktop eval-interactive`` (DESIGN.md sections 5 and 6)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def cmd_eval_interactive(args: argparse.Namespace) -> int:
    from tnseg_desktop.training.interactive_eval import evaluate_interactive
    from tnseg_desktop.engine.refiner_choice import LITE, make_refiner, resolve_refiner_name
    from tnseg_desktop.model.device import choose_device
    from tnseg_desktop.model.resolve import TEXT_PROMPT_ARCHITECTURES, architecture_of, load_auto_segmenter
    from tnseg_desktop.training.data import load_folder

    device = choose_device(getattr(args, "device", "auto"))
    samples = load_folder(args.data)
    max_clicks = int(args.max_clicks)
    # "tnseg-lite" as the refiner means the same weights as --model when that names a tnseg-lite file
    # (clip-tnseg and tnseg-med are automatic models only: the refiner then uses the shipped tnseg-lite)
    lite_weights = LITE if architecture_of(str(args.model)).startswith(TEXT_PROMPT_ARCHITECTURES) else args.model
    refiner_name = resolve_refiner_name(args.refiner, lite_weights)
    refiner = make_refiner(refiner_name, device, lite_weights=lite_weights)
    auto_probs = None
    if args.start == "auto":
        from tnseg_desktop.engine.litemedsam_refiner import stock_embedding_of

        auto = load_auto_segmenter(args.model, device)
        if hasattr(auto, "set_embed"):
            auto.set_embed(stock_embedding_of(refiner))  # one encoder pass per frame, as in the app
        from tnseg_desktop.engine.sam_polish import box_refiner_of, polished_if_default

        box = box_refiner_of(refiner)
        if box is not None:  # as in the app: the default pair is outlined by the box tool's LiteMedSAM
            auto = polished_if_default(auto, args.model, device, refiner=box)
        auto_probs = auto.auto_probs

    def progress(done: int, total: int) -> None:
        if done % 10 == 0 or done == total:
            print(f"  {done}/{total} images", file=sys.stderr, flush=True)

    t0 = time.time()
    result = evaluate_interactive(refiner, samples, start=args.start, auto_probs=auto_probs, max_clicks=max_clicks, progress=progress)
    out = {
        "model": args.model,
        "refiner": refiner_name,
        "data": str(args.data),
        "device": str(device),
        "seconds": round(time.time() - t0, 1),
        **result,
    }
    path = Path(args.json_out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2))
    d = out["dice_at_clicks"]
    picks = [k for k in (0, 1, 3, 5) if k < len(d)]
    dice_txt = "  ".join(f"Dice@{k} {d[k]:.3f}" for k in picks)
    box_txt = f"  Dice after box {out['dice_after_box']:.3f}" if "dice_after_box" in out else ""
    print(f"{refiner_name} from {args.start} on {args.data}: n={out['n']} NoC@85 {out['noc85']:.2f} NoC@90 {out['noc90']:.2f}  {dice_txt}{box_txt}")
    return 0
