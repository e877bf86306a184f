"""The out-of-range rule on the shipped model: real thyroid frames pass, an echo loop and a synthetic sector do not."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from tnseg_desktop.engine.out_of_range import frame_statistics, load_range
from tnseg_desktop.io import open_source


@pytest.fixture(scope="module")
def shipped():
    from tnseg_desktop.model.resolve import load_auto_segmenter

    torch.set_num_threads(1)
    model_range = load_range("tnseg-lite")
    assert model_range is not None, "models/tnseg-lite.range.json is missing"
    return load_auto_segmenter("tnseg-lite", torch.device("cpu")), model_range


def synthetic_sector(seed: int = 0) -> np.ndarray:
    """A phased-array style fan of speckle with a bright wall and a colour bar, 480x640 RGB."""
    rng = np.random.default_rng(seed)
    h, w = 480, 640
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot(xx - w / 2, yy + 20)
    theta = np.arctan2(xx - w / 2, yy + 20)
    fan = (r < 470) & (np.abs(theta) < 0.6)
    speckle = rng.rayleigh(40, (h, w)) * np.clip(1.2 - r / 600, 0.2, 1)
    wall = np.exp(-((r - 300) / 15) ** 2) * 160
    img = np.where(fan, np.clip(speckle + wall, 0, 255), 0).astype(np.uint8)
    rgb = np.stack([img] * 3, axis=-1)
    for k in range(200):  # colour bar at the right
        rgb[140 + k, 600:615] = (255 - k, 64, k)
    return rgb


def test_thyroid_frames_are_in_range_and_other_images_are_not(shipped, shared_data: Path) -> None:
    seg, model_range = shipped
    val = sorted((shared_data / "ddti" / "val" / "images").glob("*.png"))
    frames = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in val]
    probs = [p for i in range(0, len(frames), 8) for p in seg.auto_probs(frames[i:i + 8])]
    flagged = [p.name for p, f, prob in zip(val, frames, probs) if model_range.verdict(prob, f) is not None]
    # held-out thyroid frames: hardly any is called out of range
    assert len(flagged) <= 0.05 * len(val), flagged

    with open_source(shared_data / "dicom" / "US-PAL-8-10x-echo.dcm") as cine:
        echo = [cine.frame(i) for i in range(len(cine))]
    echo_verdicts = [model_range.verdict(p, f) for f, p in zip(echo, seg.auto_probs(echo))]
    assert all(v is not None and "may not be a nodule" in v for v in echo_verdicts)

    sector = synthetic_sector()
    prob = seg.auto_probs([sector])[0]
    assert frame_statistics(prob, sector) is None or model_range.verdict(prob, sector) is not None


def test_the_default_ensemble_has_its_own_range_and_flags_the_echo_loop(shared_data: Path) -> None:
    from tnseg_desktop.model.ensemble import ENSEMBLE
    from tnseg_desktop.model.resolve import load_auto_segmenter

    torch.set_num_threads(1)
    model_range = load_range(ENSEMBLE)
    assert model_range is not None, "models/tnseg-med+lite.range.json is missing"
    assert model_range != load_range("tnseg-lite")  # the mean of two maps is softer: its own bounds
    seg = load_auto_segmenter(ENSEMBLE, torch.device("cpu"))
    val = sorted((shared_data / "ddti" / "val" / "images").glob("*.png"))[::12]
    frames = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in val]
    flagged = [p.name for p, f in zip(val, frames) if model_range.verdict(seg.auto_probs([f])[0], f) is not None]
    assert len(flagged) <= 1, flagged
    with open_source(shared_data / "dicom" / "US-PAL-8-10x-echo.dcm") as cine:
        echo = [cine.frame(i) for i in range(0, len(cine), 3)]
    assert all(model_range.verdict(p, f) is not None for f, p in zip(echo, seg.auto_probs(echo)))
