"""Only a plausible ultrasound pixel size calibrates; anything else is 'uncalibrated' with the reason."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.io.test_loader_calibration import _region, _with
from tnseg_desktop import cli
from tnseg_desktop.io import open_source


@pytest.mark.parametrize("dx_cm", [1e-300, 1e300, 5e-6, 2.0])
def test_an_absurd_region_delta_leaves_the_loop_uncalibrated_with_the_reason(tmp_path: Path, capsys, dx_cm: float) -> None:
    path = _with(tmp_path, "absurd.dcm", SequenceOfUltrasoundRegions=[_region(0, 0, 159, 119, dx_cm, 0.01)])
    with open_source(path) as cine:
        assert cine.meta.mm_per_pixel is None and cine.meta.pixel_spacing_mm is None
        assert "PhysicalDeltaX" in cine.meta.calibration_source and "plausible" in cine.meta.calibration_source
    assert cli.main(["info", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["mm_per_pixel"] is None and "plausible" in info["calibration_source"]
    assert cli.main(["info", str(path)]) == 0
    text = capsys.readouterr().out
    assert "uncalibrated (measurements in px): PhysicalDeltaX" in text and not re.search(r"\d{20}", text)


def test_an_absurd_pixel_spacing_is_refused_too(tmp_path: Path) -> None:
    path = _with(tmp_path, "spacing.dcm", PixelSpacing=[1e-300, 1e-300])
    with open_source(path) as cine:
        assert cine.meta.mm_per_pixel is None and "PixelSpacing" in cine.meta.calibration_source


def test_a_plausible_region_still_calibrates(tmp_path: Path) -> None:
    path = _with(tmp_path, "fine.dcm", SequenceOfUltrasoundRegions=[_region(0, 0, 159, 119, 0.005, 0.005)])
    with open_source(path) as cine:
        assert cine.meta.mm_per_pixel == pytest.approx(0.05) and cine.meta.calibration_source == "ultrasound region"
