"""Write models/<model>.range.json: the range of the model's own output statistics on its training frames.

    OMP_NUM_THREADS=1 python bench/make_model_range.py --data ../shared/data/ddti/train [--model tnseg-lite] [--view-cache DIR]

--view-cache: a models that reads LiteMedSAM embeddings (tnseg-med, tnseg-med+lite) takes each frame's
plain view from that cache of training views (training/embedding_views.py) instead of encoding it again.

engine/out_of_range.py reads the file and calls a frame out of range when its
statistics lie beyond these bounds (the minimum or maximum over the training frames).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from tnseg_desktop.engine.out_of_range import STATISTICS, bounds_from_statistics, frame_statistics, range_path
from tnseg_desktop.model.resolve import load_auto_segmenter, resolve_lite_weights
from tnseg_desktop.file_hash import sha256_of
from tnseg_desktop.training.data import load_folder


def _weights_sha(model: str) -> str:
    from tnseg_desktop.model.ensemble import ENSEMBLE, MEMBERS

    names = MEMBERS if model == ENSEMBLE else (model,)
    return "+".join(sha256_of(resolve_lite_weights(n)) for n in names)


def _cached_embed(samples, cache: Path):
    """Embedding of a frame: its cached plain view when there is one, else one encoder pass (bf16, as the cache)."""
    from tnseg_desktop.model import litemedsam as lms
    from tnseg_desktop.model import registry
    from tnseg_desktop.training.embedding_views import ViewSpec, load_view, view_file

    sha = registry.entry(lms.LITEMEDSAM).sha256
    table = {s.image.tobytes(): view_file(cache, sha, "bf16", s.image, s.mask, ViewSpec()) for s in samples}
    encoder: list = []

    def embed(frame: np.ndarray) -> np.ndarray:
        path = table.get(frame.tobytes())
        if path is not None and path.is_file():
            return load_view(path).embedding.astype(np.float32)
        if not encoder:
            encoder.append(lms.load_litemedsam()[0].image_encoder.eval())
        x, _ = lms.preprocess(frame)
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            return encoder[0](torch.from_numpy(x)[None])[0].float().numpy()

    return embed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="the model's training folder (images/, masks/)")
    ap.add_argument("--model", default="tnseg-lite")
    ap.add_argument("--out", default=None, help="default: models/<model>.range.json")
    ap.add_argument("--view-cache", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    seg = load_auto_segmenter(args.model, torch.device("cpu"))
    samples = load_folder(args.data)
    if args.view_cache and hasattr(seg, "set_embed"):
        seg.set_embed(_cached_embed(samples, Path(args.view_cache)))
    stats = []
    for start in range(0, len(samples), 8):
        chunk = samples[start:start + 8]
        for sample, p in zip(chunk, seg.auto_probs([s.image for s in chunk])):
            s = frame_statistics(p, sample.image)
            if s is not None:
                stats.append(s)
    values = np.array([[getattr(s, k) for k in STATISTICS] for s in stats])
    out = {
        "model": args.model,
        "weights_sha256": _weights_sha(args.model),
        "command": "OMP_NUM_THREADS=1 python bench/make_model_range.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "data": Path(args.data).name if Path(args.data).name != "train" else f"{Path(args.data).parent.name}/train",
        "frames": len(samples),
        "frames_with_a_mask": len(stats),
        "percentiles": {k: {str(q): round(float(np.percentile(values[:, i], q)), 4) for q in (0, 0.5, 1, 50, 99, 99.5, 100)}
                        for i, k in enumerate(STATISTICS)},
        "bounds": bounds_from_statistics(stats),
    }
    path = Path(args.out) if args.out else range_path(args.model)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out["bounds"]), "->", path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
