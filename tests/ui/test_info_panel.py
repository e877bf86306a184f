import argparse
import sys

import pytest

from tnseg_desktop.errors import UserFacingError
from tnseg_desktop.io.types import CineMeta
from tnseg_desktop.ui.display_controls import levels_for
from tnseg_desktop.ui.info_panel import format_date, format_person_name, panel_rows


def meta(**kw) -> CineMeta:
    base = dict(source_path="/d/loop.dcm", frames=120, rows=480, cols=640, channels=1, fps=29.97, fps_source="FrameTime")
    base.update(kw)
    return CineMeta(**base)


def rows_of(m: CineMeta) -> dict[str, str]:
    return {k: v for _, rows in panel_rows(m) for k, v in rows}


def test_calibrated_and_uncalibrated_are_told_apart():
    cal = rows_of(meta(pixel_spacing_mm=(0.08, 0.08), calibration_source="ultrasound region"))
    assert cal["Calibration"] == "0.08 mm/px" and cal["Calibrated by"] == "ultrasound region"
    aniso = rows_of(meta(pixel_spacing_mm=(0.1, 0.2), calibration_source="PixelSpacing"))
    assert aniso["Calibration"] == "0.2 × 0.1 mm/px"
    unc = rows_of(meta())
    assert unc["Calibration"] == "uncalibrated" and "px" in unc["Calibrated by"]


def test_values_read_like_a_viewer_would_show_them():
    r = rows_of(meta(channels=3, fps=30.0003, fps_source="default", study_date="", codec="JPEG Baseline"))
    assert r["Size"] == "640 × 480 px, RGB"
    assert r["Frame rate"] == "30 fps (default)"
    assert r["Study date"] == "—"
    assert r["Codec"] == "JPEG Baseline"
    assert r["File"] == "loop.dcm"


def test_dates_and_names():
    assert format_date("20240131") == "2024-01-31"
    assert format_date("1994.01.30") == "1994-01-30"
    assert format_person_name("DOE^JANE^M") == "DOE, JANE M"
    assert format_person_name("Anonymized") == "Anonymized"
    assert format_person_name("") == "—"


def test_neutral_brightness_contrast_is_the_identity():
    assert levels_for(0, 0) == (0.0, 255.0)
    low, high = levels_for(100, 0)
    assert high <= 128


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11/Wayland check is Linux-only")
def test_gui_without_a_display_says_so_in_one_sentence(monkeypatch):
    from tnseg_desktop.ui.app import run_gui

    for var in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(UserFacingError, match="display"):
        run_gui(argparse.Namespace(path=None, screenshot=None, debug=False))
