"""A thyroid cine built from DDTI frames round-trips pixel-exactly (file, encodings, folders, images)."""

from __future__ import annotations

import random
from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest

from loader_fixtures import ddti_frames  # noqa: F401  (fixture)
from tnseg_desktop.io import open_source
from tnseg_desktop.io.cine_writer import write_cine_dicom

ENCODINGS = [None, "implicit", "big-endian", "deflate", "rle", "jpeg2000"]
EXPECTED_TS = {
    None: "1.2.840.10008.1.2.1",
    "implicit": "1.2.840.10008.1.2",
    "big-endian": "1.2.840.10008.1.2.2",
    "deflate": "1.2.840.10008.1.2.1.99",
    "rle": "1.2.840.10008.1.2.5",
    "jpeg2000": "1.2.840.10008.1.2.4.90",
}


@pytest.mark.parametrize("compress", ENCODINGS)
def test_grayscale_cine_round_trips(tmp_path: Path, ddti_frames: list[np.ndarray], compress: str | None) -> None:
    path = write_cine_dicom(ddti_frames, tmp_path / "thyroid.dcm", fps=20.0, compress=compress)
    with open_source(path) as cine:
        assert cine.meta.transfer_syntax == EXPECTED_TS[compress]
        assert (cine.meta.frames, cine.meta.rows, cine.meta.cols, cine.meta.channels) == (len(ddti_frames), 360, 280, 1)
        assert cine.meta.fps == pytest.approx(20.0)
        assert cine.meta.photometric == "MONOCHROME2"
        for i, expected in enumerate(ddti_frames):
            np.testing.assert_array_equal(cine.frame(i), expected)


@pytest.mark.parametrize("compress", [None, "rle", "jpeg2000"])
def test_rgb_cine_round_trips(tmp_path: Path, ddti_frames: list[np.ndarray], compress: str | None) -> None:
    frames = [np.dstack([f, np.flipud(f), 255 - f]) for f in ddti_frames[:5]]
    path = write_cine_dicom(frames, tmp_path / "rgb.dcm", compress=compress)
    with open_source(path) as cine:
        assert cine.meta.channels == 3
        for i, expected in enumerate(frames):
            np.testing.assert_array_equal(cine.frame(i), expected)


def test_written_cine_is_a_valid_us_multiframe(tmp_path: Path, ddti_frames: list[np.ndarray]) -> None:
    path = write_cine_dicom(ddti_frames, tmp_path / "c.dcm", fps=25.0, pixel_spacing_mm=0.08)
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.3.1"
    assert ds.file_meta.MediaStorageSOPClassUID == ds.SOPClassUID
    assert ds.NumberOfFrames == len(ddti_frames)
    assert ds.FrameTime == pytest.approx(40.0)
    assert ds.FrameIncrementPointer == 0x00181063
    assert ds.BurnedInAnnotation == "NO"
    assert ds.Modality == "US"
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "PatientName", "PatientID"):
        assert keyword in ds
    np.testing.assert_array_equal(ds.pixel_array, np.stack(ddti_frames))


def test_folder_series_ordered_by_instance_number(tmp_path: Path, ddti_frames: list[np.ndarray]) -> None:
    folder = tmp_path / "series"
    study, series = pydicom.uid.generate_uid(), pydicom.uid.generate_uid()
    order = list(range(len(ddti_frames)))
    random.Random(3).shuffle(order)  # file names sort in a different order than the instances
    assert order != sorted(order)
    for rank, i in enumerate(order):
        write_cine_dicom(
            [ddti_frames[i]], folder / f"IM{rank:03d}.dcm", instance_number=i + 1, study_instance_uid=study, series_instance_uid=series
        )
    with open_source(folder) as cine:
        assert len(cine) == len(ddti_frames)
        assert len(cine.meta.files) == len(ddti_frames)
        for i, expected in enumerate(ddti_frames):
            np.testing.assert_array_equal(cine.frame(i), expected)


def test_folder_series_ties_broken_by_acquisition_time(tmp_path: Path, ddti_frames: list[np.ndarray]) -> None:
    folder = tmp_path / "timed"
    series = pydicom.uid.generate_uid()
    times = ["20240101120005", "20240101120001", "20240101120003"]  # file z0 is acquired last
    for k, t in enumerate(times):
        p = write_cine_dicom([ddti_frames[k]], folder / f"z{k}.dcm", instance_number=1, series_instance_uid=series)
        ds = pydicom.dcmread(p)
        ds.AcquisitionDateTime = t
        ds.save_as(p)
    with open_source(folder) as cine:
        for position, k in enumerate([1, 2, 0]):
            np.testing.assert_array_equal(cine.frame(position), ddti_frames[k])


def test_folder_series_ignores_other_files_and_picks_the_largest_series(tmp_path: Path, ddti_frames: list[np.ndarray]) -> None:
    folder = tmp_path / "mixed"
    main_series = pydicom.uid.generate_uid()
    for i, f in enumerate(ddti_frames[:4]):
        write_cine_dicom([f], folder / f"b{i}.dcm", instance_number=4 - i, series_instance_uid=main_series)
    write_cine_dicom([ddti_frames[5]], folder / "a_other.dcm", instance_number=1)
    (folder / "notes.txt").write_text("not an image")
    with open_source(folder) as cine:
        assert len(cine) == 4
        np.testing.assert_array_equal(cine.frame(0), ddti_frames[3])
        np.testing.assert_array_equal(cine.frame(3), ddti_frames[0])


def test_folder_of_images_in_name_order(tmp_path: Path, ddti_frames: list[np.ndarray]) -> None:
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i, f in enumerate(ddti_frames[:5]):
        cv2.imwrite(str(folder / f"frame{i + 1}.png"), f)  # frame10 would sort after frame2: natural order
    cv2.imwrite(str(folder / "frame10.png"), ddti_frames[5])
    with open_source(folder) as cine:
        assert len(cine) == 6
        assert cine.meta.codec == "PNG" and not cine.meta.is_dicom
        np.testing.assert_array_equal(cine.frame(5), ddti_frames[5])
        np.testing.assert_array_equal(cine.frame(1), ddti_frames[1])


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tiff"])
def test_lossless_plain_images(tmp_path: Path, ddti_frames: list[np.ndarray], suffix: str) -> None:
    gray = ddti_frames[0]
    rgb = np.dstack([gray, np.flipud(gray), 255 - gray])
    cv2.imwrite(str(tmp_path / f"g{suffix}"), gray)
    cv2.imwrite(str(tmp_path / f"c{suffix}"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    with open_source(tmp_path / f"g{suffix}") as cine:
        assert len(cine) == 1 and cine.meta.channels == 1
        np.testing.assert_array_equal(cine.frame(0), gray)
    with open_source(tmp_path / f"c{suffix}") as cine:
        assert cine.meta.channels == 3
        np.testing.assert_array_equal(cine.frame(0), rgb)  # RGB order, not OpenCV's BGR


def test_jpeg_and_16bit_png(tmp_path: Path, ddti_frames: list[np.ndarray]) -> None:
    cv2.imwrite(str(tmp_path / "f.jpg"), ddti_frames[0])
    with open_source(tmp_path / "f.jpg") as cine:
        assert cine.frame(0).shape == ddti_frames[0].shape
        assert np.abs(cine.frame(0).astype(int) - ddti_frames[0]).mean() < 3
    wide = (ddti_frames[0].astype(np.uint16) * 4 + 1000)
    cv2.imwrite(str(tmp_path / "w.png"), wide)
    frame = open_source(tmp_path / "w.png").frame(0)
    assert frame.dtype == np.uint8 and frame.min() == 0 and frame.max() == 255


@pytest.mark.parametrize("compress", [None, "rle"])
def test_one_file_claiming_100000_frames_does_not_take_over_the_folder(tmp_path: Path, ddti_frames: list[np.ndarray],
                                                                        compress: str | None) -> None:
    folder = tmp_path / "series"
    series = pydicom.uid.generate_uid()
    for i, f in enumerate(ddti_frames[:4]):
        write_cine_dicom([f], folder / f"b{i}.dcm", instance_number=i + 1, series_instance_uid=series)
    liar = write_cine_dicom(ddti_frames[4:6], folder / "a_liar.dcm", compress=compress)  # another series, 2 frames
    ds = pydicom.dcmread(liar)
    ds.NumberOfFrames = 100_000
    ds.save_as(liar)
    with open_source(folder) as cine:
        assert len(cine) == 4
        np.testing.assert_array_equal(cine.frame(0), ddti_frames[0])
        assert any("a_liar.dcm was left out" in n for n in cine.meta.notes)
