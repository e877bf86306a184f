"""Calibration from ultrasound regions / PixelSpacing, and frame rate, from files the tests write."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

from tnseg_desktop.io import open_source
from tnseg_desktop.io.cine_writer import write_cine_dicom

REPO = Path(__file__).resolve().parents[2]
FRAMES = [np.full((120, 160), i * 20, np.uint8) for i in range(3)]


def _region(x0: int, y0: int, x1: int, y1: int, dx_cm: float, dy_cm: float, units: int = 3, fmt: int = 1) -> Dataset:
    item = Dataset()
    item.RegionSpatialFormat = fmt
    item.RegionDataType = 1
    item.RegionFlags = 0
    item.RegionLocationMinX0, item.RegionLocationMinY0 = x0, y0
    item.RegionLocationMaxX1, item.RegionLocationMaxY1 = x1, y1
    item.PhysicalUnitsXDirection = units
    item.PhysicalUnitsYDirection = units
    item.PhysicalDeltaX, item.PhysicalDeltaY = dx_cm, dy_cm
    return item


def _with(tmp: Path, name: str, **attrs: object) -> Path:
    ds = pydicom.dcmread(write_cine_dicom(FRAMES, tmp / "base.dcm"))
    for keyword in ("FrameTime", "FrameIncrementPointer"):
        if keyword in attrs:
            continue
        delattr(ds, keyword)
    for keyword, value in attrs.items():
        setattr(ds, keyword, value)
    out = tmp / name
    ds.save_as(out)
    return out


def test_writer_region_and_spacing(tmp_path: Path) -> None:
    path = write_cine_dicom(FRAMES, tmp_path / "c.dcm", pixel_spacing_mm=0.125, us_region=(10, 5, 149, 114))
    with open_source(path) as cine:
        m = cine.meta
        assert m.calibration_source == "ultrasound region"
        assert m.pixel_spacing_mm == pytest.approx((0.125, 0.125))
        assert m.mm_per_pixel == pytest.approx(0.125)
        assert m.us_regions == [(10, 5, 149, 114)]
        assert m.calibration_region == (10, 5, 149, 114)


def test_largest_cm_region_wins_and_all_bounds_are_recorded(tmp_path: Path) -> None:
    regions = [
        _region(0, 100, 159, 119, 0.5, 0.5, units=4, fmt=3),  # M-mode strip: seconds, not cm
        _region(5, 5, 40, 40, 0.9, 0.9),  # small 2D thumbnail
        _region(20, 10, 150, 99, 0.0125, 0.015),  # the main image: 0.125 mm across, 0.15 mm down
        _region(0, 0, 159, 119, 0.0, 0.0, units=0),  # whole frame, no physical units
    ]
    path = _with(tmp_path, "regions.dcm", SequenceOfUltrasoundRegions=regions)
    m = open_source(path).meta
    assert m.us_regions == [(0, 100, 159, 119), (5, 5, 40, 40), (20, 10, 150, 99), (0, 0, 159, 119)]
    assert m.calibration_region == (20, 10, 150, 99)
    assert m.pixel_spacing_mm == pytest.approx((0.15, 0.125))  # (row, column) in mm
    assert m.mm_per_pixel == pytest.approx(0.1375)


def test_regions_without_cm_leave_it_uncalibrated(tmp_path: Path) -> None:
    path = _with(tmp_path, "nocm.dcm", SequenceOfUltrasoundRegions=[_region(0, 0, 159, 119, 0.01, 0.01, units=0)])
    m = open_source(path).meta
    assert m.pixel_spacing_mm is None and m.mm_per_pixel is None
    assert m.calibration_source == "uncalibrated"
    assert m.us_regions == [(0, 0, 159, 119)]


def test_pixel_spacing_fallback(tmp_path: Path) -> None:
    m = open_source(_with(tmp_path, "ps.dcm", PixelSpacing=[0.2, 0.25])).meta
    assert m.calibration_source == "PixelSpacing"
    assert m.pixel_spacing_mm == pytest.approx((0.2, 0.25))


@pytest.mark.parametrize(
    ("attrs", "fps", "source"),
    [
        ({"FrameTime": 40.0}, 25.0, "FrameTime"),
        ({"FrameTimeVector": [0.0, 50.0, 50.0]}, 20.0, "FrameTimeVector"),
        ({"CineRate": 15}, 15.0, "CineRate"),
        ({"RecommendedDisplayFrameRate": 12}, 12.0, "RecommendedDisplayFrameRate"),
        ({"CineRate": 0, "RecommendedDisplayFrameRate": 24}, 24.0, "RecommendedDisplayFrameRate"),
        ({}, 30.0, "default"),
    ],
)
def test_frame_rate_sources(tmp_path: Path, attrs: dict, fps: float, source: str) -> None:
    m = open_source(_with(tmp_path, "fps.dcm", **attrs)).meta
    assert m.fps == pytest.approx(fps)
    assert m.fps_source == source


def test_info_json_has_the_contract_fields_and_no_patient_identifiers(tmp_path: Path) -> None:
    path = write_cine_dicom(
        FRAMES, tmp_path / "c.dcm", fps=25.0, pixel_spacing_mm=0.1, patient_name="Doe^Jane", patient_id="PID-98765"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "tnseg_desktop", "info", str(path), "--json"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert (info["frames"], info["rows"], info["cols"]) == (3, 120, 160)
    assert info["fps"] == pytest.approx(25.0)
    assert info["mm_per_pixel"] == pytest.approx(0.1)
    assert info["transfer_syntax"] == "1.2.840.10008.1.2.1"
    for secret in ("Doe", "Jane", "PID-98765"):
        assert secret not in proc.stdout and secret not in proc.stderr
    text = subprocess.run(
        [sys.executable, "-m", "tnseg_desktop", "info", str(path)], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert text.returncode == 0 and "0.1000 mm/pixel" in text.stdout and "Doe" not in text.stdout


def test_info_json_uncalibrated_is_null(shared_data: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tnseg_desktop", "info", str(shared_data / "dicom" / "US-PAL-8-10x-echo.dcm"), "--json"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["mm_per_pixel"] is None and info["frames"] == 10 and info["fps"] == pytest.approx(1000 / 76)
