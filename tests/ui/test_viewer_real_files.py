"""The viewer on real DICOM files through the real loader, and the --screenshot path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from tnseg_desktop.errors import UserFacingError
from tnseg_desktop.ui.app import SCREENSHOT_SIZE

io = pytest.importorskip("tnseg_desktop.io")
REPO = Path(__file__).resolve().parents[2]
ECHO = "dicom/US-PAL-8-10x-echo.dcm"


@pytest.fixture
def echo_path(shared_data) -> str:
    path = shared_data / ECHO
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return str(path)


@pytest.fixture
def reference(echo_path):
    cine = io.open_source(echo_path)
    yield cine
    cine.close()


def test_real_cine_steps_plays_and_stops(qtbot, make_window, echo_path, reference):
    w = make_window()
    w.open_path(echo_path)
    qtbot.waitUntil(lambda: w.displayed_index == 0, timeout=20000)
    n = len(reference)
    assert w.frame_count == n > 1
    assert np.array_equal(w.canvas.displayed_image(), reference.frame(0))
    assert w.transport.counter.text() == f"1 / {n}"
    assert w.info_panel.values["Modality"].text() == "US"

    qtbot.keyClick(w, Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: w.displayed_index == 1, timeout=10000)
    assert np.array_equal(w.canvas.displayed_image(), reference.frame(1))
    qtbot.keyClick(w, Qt.Key.Key_Left)
    qtbot.waitUntil(lambda: w.displayed_index == 0, timeout=10000)

    seen: list[int] = []
    w.frame_displayed.connect(seen.append)
    qtbot.keyClick(w, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: len(set(seen)) >= 3, timeout=10000)
    qtbot.keyClick(w, Qt.Key.Key_Space)
    assert not w.is_playing
    stopped_at = w.wanted_index
    qtbot.waitUntil(lambda: w.displayed_index == stopped_at, timeout=10000)
    qtbot.wait(300)
    assert w.displayed_index == stopped_at
    assert np.array_equal(w.canvas.displayed_image(), reference.frame(stopped_at))


def _expected_error(path: str) -> str | None:
    """The loader's sentence for a bad file, whether it fails on open or on frame 0."""
    try:
        cine = io.open_source(path)
    except UserFacingError as exc:
        return str(exc)
    try:
        cine.frame(0)
    except UserFacingError as exc:
        return str(exc)
    finally:
        cine.close()
    return None


@pytest.mark.parametrize("kind", ["random", "truncated", "empty"])
def test_bad_file_shows_the_message_and_a_good_one_still_opens(qtbot, make_window, echo_path, tmp_path, kind):
    bad = tmp_path / f"{kind}.dcm"
    if kind == "random":
        bad.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    elif kind == "truncated":
        data = Path(echo_path).read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    else:
        bad.write_bytes(b"")
    expected = _expected_error(str(bad))
    assert expected, "the loader should reject this file"

    w = make_window()
    messages: list[str] = []
    w.error_reported.connect(messages.append)
    w.open_path(str(bad))
    qtbot.waitUntil(lambda: bool(messages), timeout=20000)
    assert messages[0] == expected
    assert "Traceback" not in messages[0]
    box = w.last_message_box
    assert box is not None and box.isVisible() and box.text() == expected
    box.close()

    w.open_path(echo_path)
    qtbot.waitUntil(lambda: w.meta is not None and w.meta.source_path.endswith("US-PAL-8-10x-echo.dcm") and w.displayed_index == 0,
                    timeout=20000)


def _run_cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "tnseg_desktop", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=str(REPO))


def test_screenshot_command_writes_the_window(echo_path, tmp_path):
    out = tmp_path / "viewer.png"
    proc = _run_cli(echo_path, "--screenshot", str(out))
    assert proc.returncode == 0, proc.stderr
    assert out.is_file() and out.stat().st_size > 10_000
    image = QImage(str(out))
    assert (image.width(), image.height()) == (SCREENSHOT_SIZE.width(), SCREENSHOT_SIZE.height())


def test_screenshot_of_a_bad_file_exits_2_with_one_line(tmp_path):
    bad = tmp_path / "noise.dcm"
    bad.write_bytes(b"not a dicom file at all" * 10)
    out = tmp_path / "never.png"
    proc = _run_cli(str(bad), "--screenshot", str(out))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "noise.dcm" in lines[0], proc.stderr
    assert not out.exists()


def test_calibrated_thyroid_cine_round_trips_through_the_viewer(qtbot, make_window, shared_data, tmp_path):
    cv2 = pytest.importorskip("cv2")
    from tnseg_desktop.io.cine_writer import write_cine_dicom

    images = sorted((shared_data / "ddti" / "train" / "images").glob("*.png"))[:6]
    if len(images) < 6:
        pytest.skip("ddti frames not found")
    frames = [cv2.resize(cv2.imread(str(p), cv2.IMREAD_GRAYSCALE), (320, 240)) for p in images]
    path = write_cine_dicom(frames, tmp_path / "thyroid.dcm", fps=20.0, pixel_spacing_mm=0.07, compress="rle")

    w = make_window()
    w.open_path(str(path))
    qtbot.waitUntil(lambda: w.displayed_index == 0, timeout=20000)
    assert w.info_panel.values["Calibration"].text() == "0.07 mm/px"
    assert w.info_panel.values["Frame rate"].text() == "20 fps"
    assert w.info_panel.values["Size"].text() == "320 × 240 px, grayscale"
    for i in (1, 5):
        w.go_to(i)
        qtbot.waitUntil(lambda: w.displayed_index == i, timeout=10000)
        assert np.array_equal(w.canvas.displayed_image(), frames[i])
