"""`tnseg-desktop segment`: write a nodule mask for every frame of every input."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np

from tnseg_desktop.errors import UserFacingError


def _safe_stem(path: Path) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", path.stem if path.is_file() else path.name) or "input"


def run_segment(args: argparse.Namespace) -> int:
    from tnseg_desktop.io import open_source
    from tnseg_desktop.model.device import choose_device
    from tnseg_desktop.model.resolve import load_auto_segmenter
    from tnseg_desktop.store.maskfiles import write_mask_png

    device = choose_device(args.device)
    seg = load_auto_segmenter(args.model, device, prompt=args.prompt)
    out_root = Path(args.out)
    out_root.mkdir(parents=True, exist_ok=True)
    multiple = len(args.inputs) > 1
    total_frames = 0
    try:
        for inp in args.inputs:
            src = Path(inp)
            with open_source(src) as cine:
                n = len(cine)
                out_dir = out_root / _safe_stem(src) if (multiple or n > 1) else out_root
                out_dir.mkdir(parents=True, exist_ok=True)
                masks: dict[int, np.ndarray] = {}
                for start in range(0, n, 8):
                    idx = list(range(start, min(n, start + 8)))
                    probs = seg.auto_probs([cine.frame(i) for i in idx])
                    for i, p in zip(idx, probs):
                        mask = p >= 0.5
                        masks[i] = mask
                        name = f"{_safe_stem(src)}.png" if n == 1 and not multiple else f"frame_{i:04d}.png"
                        try:
                            write_mask_png(out_dir / name, mask)
                        except OSError as exc:
                            raise UserFacingError(f"could not write the mask file ({exc.strerror or exc}).", str(out_dir / name)) from None
                    print(f"\r{src.name}: {idx[-1] + 1}/{n} frames", end="", file=sys.stderr, flush=True)
                print(file=sys.stderr)
                total_frames += n
                if args.format == "seg":
                    if not cine.meta.is_dicom:
                        raise UserFacingError("a DICOM SEG can only be written for a DICOM source; use --format png.", str(src))
                    from tnseg_desktop.io.seg_writer import write_seg

                    seg_path = out_dir / f"{_safe_stem(src)}_seg.dcm"
                    write_seg(src, masks, seg_path, algorithm_name=args.model)
                    print(f"wrote {seg_path}", file=sys.stderr)
    except KeyboardInterrupt:
        print("\ncancelled; masks written so far are complete files", file=sys.stderr)
        return 130
    print(f"{total_frames} masks written to {out_root}")
    return 0
