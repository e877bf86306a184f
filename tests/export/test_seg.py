"""SEG export: reads back pixel-exactly with pydicom and highdicom, references the source frames, passes dciodvfy."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest

from tests.export.conftest import make_ddti_cine
from tnseg_desktop.io.seg_writer import SEGMENT_LABEL, SegWriteError, conformant_uid, write_seg

PAL = "US-PAL-8-10x-echo.dcm"


def dciodvfy_errors(path: Path) -> tuple[list[str], list[str]]:
    exe = shutil.which("dciodvfy")
    if exe is None:
        pytest.skip("dciodvfy (Debian package dicom3tools) is not installed; the SEG could not be validated")
    proc = subprocess.run([exe, str(path)], capture_output=True, text=True, timeout=120)
    lines = (proc.stdout + proc.stderr).splitlines()
    return [l for l in lines if l.startswith("Error")], [l for l in lines if l.startswith("Warning")]


def synthetic_masks(n: int, rows: int, cols: int) -> dict[int, np.ndarray]:
    yy, xx = np.mgrid[:rows, :cols]
    masks = {f: ((yy - rows // 2 - 3 * f) ** 2 + (xx - cols // 3 - 5 * f) ** 2 < (40 + f) ** 2) for f in range(n)}
    masks[2] = np.zeros((rows, cols), bool)  # a frame checked and found without nodule
    masks[3][0, :7] = True  # odd bits at the very start, across a byte boundary
    masks[3][-1, -3:] = True
    return masks


def check_readback(seg_path: Path, source: Path, masks: dict[int, np.ndarray]) -> None:
    src = pydicom.dcmread(str(source), stop_before_pixels=True)
    ds = pydicom.dcmread(str(seg_path))
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4" and ds.Modality == "SEG"
    assert ds.SegmentationType == "BINARY" and ds.SegmentSequence[0].SegmentLabel == SEGMENT_LABEL
    seg_item = ds.SegmentSequence[0]
    assert seg_item.AnatomicRegionSequence[0].CodeValue == "69748006"
    assert seg_item.SegmentedPropertyTypeCodeSequence[0].CodeValue == "27925004"
    assert ds.StudyInstanceUID == conformant_uid(src.StudyInstanceUID)
    pixels = ds.pixel_array.reshape(-1, ds.Rows, ds.Columns)
    assert len(pixels) == len(masks)
    seen = []
    for k, item in enumerate(ds.PerFrameFunctionalGroupsSequence):
        ref = item.DerivationImageSequence[0].SourceImageSequence[0]
        assert ref.ReferencedSOPInstanceUID == conformant_uid(src.SOPInstanceUID)
        frame = int(ref.get("ReferencedFrameNumber", 1)) - 1
        seen.append(frame)
        assert np.array_equal(pixels[k] != 0, masks[frame]), f"SEG frame {k} (source frame {frame}) differs"
    assert sorted(seen) == sorted(masks)
    # highdicom's reader finds the same masks by source frame
    seg = hd.seg.segread(str(seg_path))
    uid = conformant_uid(src.SOPInstanceUID)
    if "NumberOfFrames" in src:
        numbers = [f + 1 for f in sorted(masks)]
        arr = seg.get_pixels_by_source_frame(uid, source_frame_numbers=numbers)
    else:
        arr = seg.get_pixels_by_source_instance([uid])
    for k, f in enumerate(sorted(masks)):
        assert np.array_equal(arr[k, ..., 0] != 0, masks[f])


def test_seg_of_palette_echo_cine(shared_data: Path, tmp_path: Path) -> None:
    source = shared_data / "dicom" / PAL
    before = source.read_bytes()
    masks = synthetic_masks(10, 430, 600)
    out = write_seg(source, masks, tmp_path / "pal_seg.dcm", algorithm_name="tnseg-lite", algorithm_version="1")
    assert source.read_bytes() == before  # the source is never touched
    check_readback(out, source, masks)
    ds = pydicom.dcmread(str(out), stop_before_pixels=True)
    assert ds.StudyTime == "112501" and ds.StudyDate == "19940130" and ds.PatientID == ""
    errors, warnings = dciodvfy_errors(out)
    assert errors == [], "\n".join(errors)


def test_seg_of_ddti_cine_with_some_frames(shared_data: Path, tmp_path: Path) -> None:
    source, gt = make_ddti_cine(shared_data, tmp_path / "ddti.dcm", burned_in="NO")
    masks = {0: gt[0], 2: gt[2]}  # frame 1 not segmented: left out of the SEG
    out = write_seg(source, masks, tmp_path / "ddti_seg.dcm")
    check_readback(out, source, masks)
    errors, _ = dciodvfy_errors(out)
    assert errors == [], "\n".join(errors)


@pytest.mark.parametrize("name", ["US1_UNCR.dcm", "OBXXXX1A_rle_2frame.dcm", "JPEGLosslessP14SV1_3s_2f_u_08_08.dcm"])
def test_seg_of_other_ultrasound_files(shared_data: Path, tmp_path: Path, name: str) -> None:
    source = shared_data / "dicom" / name
    src = pydicom.dcmread(str(source), stop_before_pixels=True)
    n = int(src.get("NumberOfFrames", 1) or 1)
    masks = {f: synthetic_masks(4, src.Rows, src.Columns)[f] for f in range(n)}
    out = write_seg(source, masks, tmp_path / "seg.dcm", algorithm_name="tnseg-lite")
    check_readback(out, source, masks)
    errors, _ = dciodvfy_errors(out)
    assert errors == [], "\n".join(errors)


def test_seg_refuses_wrong_masks(shared_data: Path, tmp_path: Path) -> None:
    source = shared_data / "dicom" / PAL
    with pytest.raises(SegWriteError, match="source resolution"):
        write_seg(source, {0: np.zeros((100, 100), bool)}, tmp_path / "x.dcm")
    with pytest.raises(SegWriteError, match="10 frame"):
        write_seg(source, {10: np.zeros((430, 600), bool)}, tmp_path / "x.dcm")
    with pytest.raises(SegWriteError, match="no masks"):
        write_seg(source, {}, tmp_path / "x.dcm")
    assert not (tmp_path / "x.dcm").exists()


def test_conformant_uid() -> None:
    assert conformant_uid("1.2.840.10008.1") == "1.2.840.10008.1"
    derived = conformant_uid("999.999.3859744")
    assert derived.startswith("2.25.") and len(derived) <= 64 and derived == conformant_uid("999.999.3859744")
    assert conformant_uid("1.02.3").startswith("2.25.")  # leading zero in a component
