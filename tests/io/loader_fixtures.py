"""Fixtures and helpers shared by the loader tests (imported by name: tests/io has no conftest)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest
from pydicom import examples
from pydicom.data import get_testdata_file


def color3d_path() -> Path:
    p = get_testdata_file("color3d_jpeg_baseline.dcm", download=False)
    if p is None:
        pytest.skip("pydicom-data's color3d_jpeg_baseline.dcm is not installed")
    return Path(p)


def ybr_color_path() -> Path:
    return Path(examples.get_path("ybr_color"))


def pydicom_test_file(name: str) -> Path:
    p = get_testdata_file(name, download=False)
    if p is None:
        pytest.skip(f"pydicom test file {name} is not available offline")
    return Path(p)


@pytest.fixture(scope="session")
def ddti_frames(shared_data: Path) -> list[np.ndarray]:
    """Eight real thyroid frames of one size from DDTI (grayscale uint8)."""
    frames: list[np.ndarray] = []
    for p in sorted((shared_data / "ddti" / "train" / "images").glob("*.png")):
        img = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
        if img is not None and img.ndim == 2 and img.shape == (360, 280):
            frames.append(img)
        if len(frames) == 8:
            break
    if len(frames) < 5:
        pytest.skip("not enough DDTI frames of one size")
    return frames


def dcm_bytes(ds: pydicom.Dataset, path: Path) -> Path:
    ds.save_as(path, enforce_file_format=True)
    return path
