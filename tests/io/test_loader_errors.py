"""Malformed inputs raise the specific typed error, and `info` exits non-zero with one stderr line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from loader_fixtures import color3d_path, ddti_frames  # noqa: F401  (fixture)
from tnseg_desktop.errors import UserFacingError
from tnseg_desktop.io import errors as E
from tnseg_desktop.io import open_source
from tnseg_desktop.io.cine_writer import write_cine_dicom

REPO = Path(__file__).resolve().parents[2]


def _cine(tmp: Path, frames: list[np.ndarray], name: str = "ok.dcm", compress: str | None = None) -> Path:
    return write_cine_dicom(frames[:6], tmp / name, compress=compress)


def make_truncated(tmp: Path, frames: list[np.ndarray]) -> Path:
    p = _cine(tmp, frames)
    data = p.read_bytes()
    out = tmp / "truncated.dcm"
    out.write_bytes(data[: int(len(data) * 0.6)])
    return out


def make_truncated_rle(tmp: Path, frames: list[np.ndarray]) -> Path:
    p = _cine(tmp, frames, compress="rle")
    data = p.read_bytes()
    out = tmp / "truncated_rle.dcm"
    out.write_bytes(data[: int(len(data) * 0.7)])
    return out


def make_truncated_header(tmp: Path, frames: list[np.ndarray]) -> Path:
    data = _cine(tmp, frames).read_bytes()
    out = tmp / "truncated_header.dcm"
    out.write_bytes(data[:400])
    return out


def make_no_pixel_data(tmp: Path, frames: list[np.ndarray]) -> Path:
    ds = pydicom.dcmread(_cine(tmp, frames))
    del ds.PixelData
    out = tmp / "nopixels.dcm"
    ds.save_as(out)
    return out


def _edited(tmp: Path, frames: list[np.ndarray], name: str, compress: str | None, **changes: object) -> Path:
    ds = pydicom.dcmread(_cine(tmp, frames, compress=compress))
    for k, v in changes.items():
        setattr(ds, k, v)
    out = tmp / name
    ds.save_as(out)
    return out


def make_too_many_frames(tmp: Path, frames: list[np.ndarray]) -> Path:
    return _edited(tmp, frames, "toomany.dcm", None, NumberOfFrames=40)


def make_too_many_frames_rle(tmp: Path, frames: list[np.ndarray]) -> Path:
    return _edited(tmp, frames, "toomany_rle.dcm", "rle", NumberOfFrames=40)


def make_absurd_dimensions(tmp: Path, frames: list[np.ndarray]) -> Path:
    return _edited(tmp, frames, "absurd.dcm", None, Rows=0)


def make_unknown_transfer_syntax(tmp: Path, frames: list[np.ndarray]) -> Path:
    ds = pydicom.dcmread(_cine(tmp, frames))
    ds.file_meta.TransferSyntaxUID = "1.2.826.0.1.3680043.9.9999.1"
    out = tmp / "unknown_ts.dcm"
    pydicom.dcmwrite(out, ds, implicit_vr=False, little_endian=True)
    return out


def make_random_bytes(tmp: Path, frames: list[np.ndarray]) -> Path:
    out = tmp / "random.dcm"
    out.write_bytes(np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    return out


def make_dicm_garbage(tmp: Path, frames: list[np.ndarray]) -> Path:
    out = tmp / "garbage_after_magic.dcm"
    out.write_bytes(b"\0" * 128 + b"DICM" + np.random.default_rng(2).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    return out


def make_empty(tmp: Path, frames: list[np.ndarray]) -> Path:
    out = tmp / "empty.dcm"
    out.write_bytes(b"")
    return out


def make_structured_report(tmp: Path, frames: list[np.ndarray]) -> Path:
    sop = generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"  # Basic Text SR
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = sop
    ds.Modality = "SR"
    ds.PatientName = "Test^Patient"
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.ValueType = "CONTAINER"
    ds.CompletionFlag = "COMPLETE"
    ds.VerificationFlag = "UNVERIFIED"
    item = Dataset()
    item.RelationshipType = "CONTAINS"
    item.ValueType = "TEXT"
    item.TextValue = "Nodule 12 mm, TI-RADS 4."
    ds.ContentSequence = [item]
    out = tmp / "report.dcm"
    ds.save_as(out, enforce_file_format=True)
    return out


def make_fake_png(tmp: Path, frames: list[np.ndarray]) -> Path:
    out = tmp / "fake.png"
    out.write_bytes(b"this is plain text, not a picture\n" * 10)
    return out


def make_truncated_png(tmp: Path, frames: list[np.ndarray]) -> Path:
    import cv2

    ok, buf = cv2.imencode(".png", frames[0])
    out = tmp / "cut.png"
    out.write_bytes(buf.tobytes()[:300])
    return out


def make_missing(tmp: Path, frames: list[np.ndarray]) -> Path:
    return tmp / "does" / "not" / "exist.dcm"


def make_empty_folder(tmp: Path, frames: list[np.ndarray]) -> Path:
    out = tmp / "emptyfolder"
    out.mkdir()
    (out / "readme.txt").write_text("nothing here")
    return out


CASES: list[tuple[Callable[[Path, list[np.ndarray]], Path], type[E.LoadError]]] = [
    (make_truncated, E.CorruptPixelDataError),
    (make_truncated_rle, E.CorruptPixelDataError),
    (make_truncated_header, E.CorruptFileError),
    (make_no_pixel_data, E.NoPixelDataError),
    (make_too_many_frames, E.CorruptPixelDataError),
    (make_too_many_frames_rle, E.CorruptPixelDataError),
    (make_absurd_dimensions, E.AbsurdDimensionsError),
    (make_unknown_transfer_syntax, E.UnsupportedTransferSyntaxError),
    (make_random_bytes, E.NotDicomError),
    (make_dicm_garbage, E.CorruptFileError),
    (make_empty, E.EmptyFileError),
    (make_structured_report, E.NotAnImageError),
    (make_fake_png, E.NotDicomError),
    (make_truncated_png, E.CorruptFileError),
    (make_missing, E.SourceNotFoundError),
    (make_empty_folder, E.UnsupportedFileError),
]
IDS = [maker.__name__.removeprefix("make_") for maker, _ in CASES]


def _open_everything(path: Path) -> None:
    with open_source(path) as cine:
        for i in range(len(cine)):
            cine.frame(i)


@pytest.mark.parametrize(("maker", "expected"), CASES, ids=IDS)
def test_typed_error(tmp_path: Path, ddti_frames: list[np.ndarray], maker, expected) -> None:
    bad = maker(tmp_path, ddti_frames)
    with pytest.raises(expected) as info:
        _open_everything(bad)
    err = info.value
    assert type(err) is expected, f"{type(err).__name__} is not exactly {expected.__name__}"
    assert isinstance(err, UserFacingError)
    assert err.path is not None and Path(err.path).name in (bad.name, "exist.dcm")
    text = str(err)
    assert "\n" not in text and text.endswith(".") and "Traceback" not in text
    assert len(text) < 200


def test_nonimage_and_no_pixel_errors_are_distinct_classes() -> None:
    assert not issubclass(E.NotAnImageError, E.NoPixelDataError)
    assert issubclass(E.CorruptPixelDataError, E.LoadError)
    assert issubclass(E.SourceNotFoundError, UserFacingError)


def test_missing_codec_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    import tnseg_desktop.io.dicom_reader as reader

    class Unavailable:
        is_available = False
        missing_dependencies = ["pylibjpeg-libjpeg"]

    monkeypatch.setattr(reader, "get_decoder", lambda uid: Unavailable())
    with pytest.raises(E.MissingCodecError) as info:
        open_source(color3d_path())
    assert info.value.package == "pylibjpeg-libjpeg"
    assert "pylibjpeg-libjpeg" in str(info.value)


def _run_info(path: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONWARNINGS="default")
    return subprocess.run(
        [sys.executable, "-m", "tnseg_desktop", "info", str(path), "--json"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )


@pytest.mark.parametrize(("maker", "expected"), CASES, ids=IDS)
def test_info_command_fails_with_one_line(tmp_path: Path, ddti_frames: list[np.ndarray], maker, expected) -> None:
    bad = maker(tmp_path, ddti_frames)
    proc = _run_info(bad)
    assert proc.returncode != 0
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("tnseg-desktop: ") and str(bad) in lines[0]
    assert "internal error" not in lines[0]
    assert proc.stdout == ""
