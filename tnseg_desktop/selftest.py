"""``tnseg-desktop --self-test``: a headless smoke test of an install or bundle.

It opens the bundled synthetic sample, segments every frame with the shipped
tnseg-lite model, refines frame 1 with one simulated click (placed against the
sample's known nodule mask, as an annotator would), exports PNG masks and a
DICOM SEG to a temporary folder and reads both back. It checks that the parts
of the install work together, not the model's accuracy: the Dice figures are
printed for information. The last line is ``PASS ...`` (exit 0) or
``FAIL: <step>: <reason>`` (exit 1).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from tnseg_desktop.errors import UserFacingError
from tnseg_desktop.paths import resources_dir
from tnseg_desktop.training.metrics import dice

SHIPPED_MODEL = "tnseg-lite"
SAMPLE_FILE = "thyroid_sample.dcm"
SAMPLE_MASKS = "masks"
REFINED_FRAME = 0
SEG_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"


class SelfTestFailure(Exception):
    """One step did not do what it should; the message is the reason."""


def sample_paths() -> tuple[Path, Path]:
    """The bundled sample cine and the folder of its known nodule masks."""
    folder = resources_dir() / "sample"
    return folder / SAMPLE_FILE, folder / SAMPLE_MASKS


@dataclass
class _State:
    work: Path
    sample: Path | None = None
    truth: list[np.ndarray] = field(default_factory=list)
    frames: list[np.ndarray] = field(default_factory=list)
    model_path: Path | None = None
    predictor: Any = None
    masks: dict[int, np.ndarray] = field(default_factory=dict)


def _check(condition: bool, reason: str) -> None:
    if not condition:
        raise SelfTestFailure(reason)


def _step_sample(s: _State) -> str:
    import cv2

    dcm, mask_dir = sample_paths()
    _check(dcm.is_file(), f"bundled sample missing ({dcm})")
    masks = sorted(mask_dir.glob("frame_*.png"))
    _check(bool(masks), f"the sample's nodule masks are missing ({mask_dir})")
    s.sample = dcm
    s.truth = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) > 0 for p in masks]
    return f"{dcm.name}, {len(masks)} reference masks"


def _step_model(s: _State) -> str:
    from tnseg_desktop.model import registry

    entries = registry.known_entries()
    _check(SHIPPED_MODEL in entries, f"the registry ({registry.registry_path()}) has no '{SHIPPED_MODEL}' entry")
    path = registry.find_path(SHIPPED_MODEL)
    _check(path is not None, f"shipped model missing: {entries[SHIPPED_MODEL].file} is not in {registry.shipped_models_dir()}")
    state = registry.status(SHIPPED_MODEL, deep=True)
    _check(state == registry.INSTALLED, f"shipped model {state}: {path} does not match the registry's size/sha256")
    s.model_path = path
    checked = "sha256 verified" if entries[SHIPPED_MODEL].sha256 else "no sha256 in the registry yet"
    return f"{path} ({registry.describe_size(path.stat().st_size)}, {checked})"


def _step_open(s: _State) -> str:
    from tnseg_desktop.io import open_source

    assert s.sample is not None
    with open_source(s.sample) as cine:
        meta = cine.meta
        s.frames = [np.array(cine.frame(i)) for i in range(len(cine))]
    _check(len(s.frames) == len(s.truth), f"the sample has {len(s.frames)} frames, its masks {len(s.truth)}")
    _check(s.frames[0].shape[:2] == s.truth[0].shape, f"frame size {s.frames[0].shape[:2]} differs from the mask size {s.truth[0].shape}")
    _check(meta.mm_per_pixel is not None, "the sample's calibration was not read")
    return f"{meta.frames} frames {meta.rows}x{meta.cols}, {meta.fps:g} fps, {meta.mm_per_pixel:.3f} mm/pixel"


def _step_load(s: _State) -> str:
    from tnseg_desktop.model.device import choose_device, describe_device
    from tnseg_desktop.model.lite_predictor import LitePredictor
    from tnseg_desktop.model.lite_weights import load_lite

    assert s.model_path is not None
    device = choose_device("auto")
    s.predictor = LitePredictor(load_lite(s.model_path, device), device)
    return describe_device(device)


def _step_segment(s: _State) -> str:
    probs = s.predictor.auto_probs(s.frames)
    _check(len(probs) == len(s.frames), f"{len(probs)} masks for {len(s.frames)} frames")
    for i, (p, f) in enumerate(zip(probs, s.frames)):
        _check(p.shape == f.shape[:2], f"frame {i + 1}: mask {p.shape} is not at frame resolution {f.shape[:2]}")
        _check(bool(np.isfinite(p).all()), f"frame {i + 1}: the model gave non-finite values")
    s.masks = {i: p > 0.5 for i, p in enumerate(probs)}
    mean = float(np.mean([dice(s.masks[i], t) for i, t in enumerate(s.truth)]))
    return f"{len(probs)} frames, mean Dice {mean:.3f} against the sample's nodule"


def _step_refine(s: _State) -> str:
    from tnseg_desktop.prompts import Click
    from tnseg_desktop.training.clicks import next_click

    i = REFINED_FRAME
    before = s.masks[i]
    truth = s.truth[i]
    click = next_click(before, truth)
    if click is None:  # already perfect: still exercise the refiner with a click on the nodule
        rows, cols = np.nonzero(truth)
        click = Click(int(np.median(rows)), int(np.median(cols)), True)
    prob = s.predictor.refine_prob(s.frames[i], before, [click])
    _check(prob.shape == before.shape and bool(np.isfinite(prob).all()), "the refined mask has the wrong size or non-finite values")
    s.masks[i] = prob > 0.5
    kind = "positive" if click.positive else "negative"
    return f"frame {i + 1}, {kind} click at (row {click.row}, col {click.col}): Dice {dice(before, truth):.3f} -> {dice(s.masks[i], truth):.3f}"


def _step_png(s: _State) -> str:
    import cv2

    from tnseg_desktop.io.export_png import write_mask_pngs

    paths = write_mask_pngs(s.masks, s.work / "png")
    _check(len(paths) == len(s.masks), f"{len(paths)} PNG files written for {len(s.masks)} masks")
    for (i, mask), path in zip(sorted(s.masks.items()), paths):
        back = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        _check(back is not None, f"{path.name} cannot be read back")
        _check(back.shape == mask.shape and bool(np.array_equal(back > 0, mask)), f"{path.name} differs from frame {i + 1}'s mask")
    return f"{len(paths)} files read back equal"


def _step_seg(s: _State) -> str:
    import pydicom

    from tnseg_desktop.io.seg_writer import write_seg

    assert s.sample is not None
    out = write_seg(s.sample, s.masks, s.work / "nodule_seg.dcm", algorithm_name=SHIPPED_MODEL)
    ds = pydicom.dcmread(str(out))
    _check(str(ds.SOPClassUID) == SEG_STORAGE, f"the SEG's SOP class is {ds.SOPClassUID}")
    source = pydicom.dcmread(str(s.sample), stop_before_pixels=True)
    pixels = ds.pixel_array.reshape(-1, int(ds.Rows), int(ds.Columns))
    _check(len(pixels) == len(s.masks), f"the SEG holds {len(pixels)} frames, expected {len(s.masks)}")
    for item, frame_pixels in zip(ds.PerFrameFunctionalGroupsSequence, pixels):
        ref = item.DerivationImageSequence[0].SourceImageSequence[0]
        _check(ref.ReferencedSOPInstanceUID == source.SOPInstanceUID, "the SEG does not reference the sample")
        f = int(ref.ReferencedFrameNumber) - 1
        _check(bool(np.array_equal(frame_pixels > 0, s.masks[f])), f"the SEG's frame for source frame {f + 1} differs from its mask")
    return f"{out.name}, {len(pixels)} frames read back equal ({out.stat().st_size / 1000:.0f} KB)"


STEPS: list[tuple[str, Callable[[_State], str]]] = [
    ("bundled sample", _step_sample),
    ("shipped model", _step_model),
    ("open sample", _step_open),
    ("load model", _step_load),
    ("segment", _step_segment),
    ("refine with one click", _step_refine),
    ("export PNG", _step_png),
    ("export DICOM SEG", _step_seg),
]


def self_test(out: Callable[[str], None] = print, debug: bool = False) -> bool:
    """Run every step, printing one line each; True when all passed."""
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tnseg-selftest-") as tmp:
        state = _State(work=Path(tmp))
        for name, step in STEPS:
            t0 = time.monotonic()
            try:
                detail = step(state)
            except SelfTestFailure as exc:
                out(f"FAIL: {name}: {exc}")
                return False
            except UserFacingError as exc:
                out(f"FAIL: {name}: {exc.one_line()}")
                return False
            except Exception as exc:  # a bug or a broken install: still one line unless --debug
                if debug:
                    traceback.print_exc()
                out(f"FAIL: {name}: unexpected {type(exc).__name__}: {' '.join(str(exc).split())}")
                return False
            out(f"  ok  {name}: {detail} ({time.monotonic() - t0:.1f} s)")
    out(f"PASS self-test in {time.monotonic() - start:.1f} s")
    return True


def run_self_test(args: argparse.Namespace) -> int:
    """CLI handler: 0 on PASS, 1 on FAIL."""
    ok = self_test(lambda line: print(line, flush=True), debug=bool(getattr(args, "debug", False)))
    sys.stdout.flush()
    return 0 if ok else 1
