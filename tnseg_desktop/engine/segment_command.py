"""``tnseg-desktop segment INPUT... --out DIR``: the automatic mask of every frame of every input (DESIGN.md section 5).

One layout for one input or many: ``DIR/<key>/frame_NNNN.png`` (NNNN the
0-based frame index, as in File › Export › PNG) and, with ``--format seg``,
``DIR/<key>/<key>_seg.dcm``. The key is the de-identified study key
(``study-`` and the start of the content hash the store also knows the study
by), because input file names often carry the patient's name or ID;
``--keep-names`` uses the input's name instead. Every input is tried; each one
that fails gets its own line on stderr and the exit code is non-zero when any did.
"""

from __future__ import annotations

import argparse
import re
import sys
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from tnseg_desktop.errors import UserFacingError, printable

BATCH = 8


def safe_stem(path: Path) -> str:
    """A file-system-safe folder name for an input: its stem (a folder's own name)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", path.stem if path.is_file() else path.name) or "input"


def study_key(content_hash: str) -> str:
    """The de-identified name of a study's outputs: one-way (a hash of its pixels), the same on every run."""
    return f"study-{content_hash[:12]}"


class OutputFolders:
    """One folder per input under ``root``; a name used twice in a run gets ``_2``, ``_3``, ..."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._used: dict[str, int] = {}

    def folder_for(self, name: str) -> Path:
        self._used[name] = self._used.get(name, 0) + 1
        n = self._used[name]
        return self.root / (name if n == 1 else f"{name}_{n}")


def _prepare_out(out: str) -> Path:
    root = Path(out)
    if root.exists() and not root.is_dir():
        raise UserFacingError("--out must be a folder, and this is a file; choose a folder (it is created when missing).", str(root))
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserFacingError(f"the output folder cannot be created ({exc.strerror or exc}).", str(root)) from None
    return root


def _make_folder(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise UserFacingError("a file of this name is in the way of the input's output folder.", str(folder))
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserFacingError(f"the output folder cannot be created ({exc.strerror or exc}).", str(folder)) from None


def segment_one(src: Path, folders: OutputFolders, seg: Any, args: argparse.Namespace) -> int:
    """Masks (and a SEG) of one input into its folder under ``folders``; returns the number of frames."""
    from tnseg_desktop.engine.view_regions import ViewConfinedSegmenter, views_of
    from tnseg_desktop.io import open_source
    from tnseg_desktop.io.content_hash import content_hash
    from tnseg_desktop.io.export_png import write_mask_png

    with open_source(src) as cine:
        if args.format == "seg" and not cine.meta.is_dicom:
            raise UserFacingError("a DICOM SEG can only be written for a DICOM source; use --format png.", str(src))
        n = len(cine)
        keep = getattr(args, "keep_names", False)
        folder = folders.folder_for(safe_stem(src) if keep else study_key(content_hash(cine, cine.meta)))
        if not keep:
            print(f"{printable(src.name)} -> {folder.name}", file=sys.stderr)
        model = ViewConfinedSegmenter(seg, views_of(cine.meta))
        _make_folder(folder)
        masks: dict[int, np.ndarray] = {}
        for start in range(0, n, BATCH):
            idx = list(range(start, min(n, start + BATCH)))
            for i, p in zip(idx, model.auto_probs([cine.frame(i) for i in idx])):
                masks[i] = p >= 0.5
                path = folder / f"frame_{i:04d}.png"
                try:
                    write_mask_png(path, masks[i])
                except OSError as exc:
                    raise UserFacingError(f"could not write the mask file ({exc.strerror or exc}).", str(path)) from None
            print(f"\r{printable(src.name)}: {idx[-1] + 1}/{n} frames", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        if args.format == "seg":
            from tnseg_desktop.io.seg_writer import write_seg

            seg_path = folder / f"{folder.name}_seg.dcm"
            write_seg(src, masks, seg_path, algorithm_name=args.model)
            print(f"wrote {printable(seg_path)}", file=sys.stderr)
    return n


def cmd_segment(args: argparse.Namespace) -> int:
    from tnseg_desktop.model.device import choose_device
    from tnseg_desktop.model.resolve import check_prompt_usable, load_auto_segmenter

    out_root = _prepare_out(args.out)
    check_prompt_usable(args.model, args.prompt)
    from tnseg_desktop.engine.sam_polish import polished_if_default

    device = choose_device(args.device)
    seg = polished_if_default(load_auto_segmenter(args.model, device, prompt=args.prompt), args.model, device, args.prompt)
    inputs = [Path(p) for p in args.inputs]
    total_frames, failed = 0, 0
    try:
        folders = OutputFolders(out_root)
        for src in inputs:
            try:
                total_frames += segment_one(src, folders, seg, args)
            except UserFacingError as exc:
                failed += 1
                if getattr(args, "debug", False):
                    traceback.print_exc()
                text = exc.one_line()
                print(f"tnseg-desktop: {text if exc.path else printable(src) + ': ' + text}", file=sys.stderr)
            except Exception as exc:  # a bug on one input: say so on its line and go on with the others
                failed += 1
                if getattr(args, "debug", False):
                    traceback.print_exc()
                msg = " ".join(str(exc).split()) or type(exc).__name__
                print(f"tnseg-desktop: {printable(src)}: internal error ({type(exc).__name__}): {printable(msg)} (run with --debug for details)", file=sys.stderr)
    except KeyboardInterrupt:
        print("\ncancelled; masks written so far are complete files", file=sys.stderr)
        return 130
    done = len(inputs) - failed
    print(f"{total_frames} masks of {done} input{'s' if done != 1 else ''} written to {out_root}"
          + (f"; {failed} of {len(inputs)} inputs failed" if failed else ""))
    return 2 if failed else 0
