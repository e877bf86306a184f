"""Click-refinement latency of tnseg-lite, SAM vit_b and MobileSAM (random weights) and SAM embedding time.

Run from the repository root: ``python bench/interactive.py --json interactive.json [--device cpu|cuda|auto] [--n 30]``.
The same figures appear in ``tnseg-desktop bench`` (``click_refine_ms``, ``embed_ms``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tnseg_desktop.engine.latency import measure_click_latency  # noqa: E402
from tnseg_desktop.model.device import choose_device, describe_device  # noqa: E402

MODELS = ("tnseg-lite", "mobilesam", "sam-vit-b")
TARGETS_MS = {"tnseg-lite": 100.0, "mobilesam": 30.0, "sam-vit-b": 30.0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", dest="json_out", required=True)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--n", type=int, default=30, help="timed clicks per model (after 3 warm-up clicks)")
    parser.add_argument("--embed-n", type=int, default=2, help="timed embeddings per SAM model (after 1 warm-up)")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave torch's default)")
    args = parser.parse_args(argv)
    if args.threads > 0:
        import torch

        torch.set_num_threads(args.threads)
    device = choose_device(args.device)
    out: dict = {"device": describe_device(device), "models": {}, "click_refine_ms": {}, "embed_ms": {}}
    print(f"device: {out['device']}")
    print(f"{'model':12s} {'median ms':>10s} {'p95 ms':>9s} {'cpu ms':>8s} {'target':>7s} {'embed ms':>10s} {'embed cpu':>10s}")
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        r = measure_click_latency(name, device, n=args.n, embed_n=args.embed_n)
        out["models"][name] = r
        out["click_refine_ms"][name] = r["click_refine_ms"]
        if r.get("embed_ms") is not None:
            out["embed_ms"][name] = r["embed_ms"]
        embed = "-" if r.get("embed_ms") is None else f"{r['embed_ms']:.0f}"
        embed_cpu = "-" if r.get("embed_cpu_ms") is None else f"{r['embed_cpu_ms']:.0f}"
        print(
            f"{name:12s} {r['median_ms']:10.1f} {r['p95_ms']:9.1f} {r['click_cpu_ms']:8.1f} {TARGETS_MS.get(name, float('nan')):7.0f} {embed:>10s} {embed_cpu:>10s}"
            f"   (load average {r.get('load_average')})",
            flush=True,
        )
    Path(args.json_out).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
