import subprocess
import sys

import cv2
import numpy as np
import pydicom

from tnseg_desktop.engine.segment_command import study_key
from tnseg_desktop.io import open_source
from tnseg_desktop.io.content_hash import content_hash


def test_segment_writes_one_mask_per_frame_and_a_seg(tmp_path, shared_data):
    src = shared_data / "dicom" / "US-PAL-8-10x-echo.dcm"
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "tnseg_desktop", "segment", str(src), "--out", str(out), "--format", "seg", "--model", "tnseg-lite", "--device", "cpu"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    (folder,) = out.iterdir()
    pngs = sorted(folder.glob("frame_*.png"))
    with open_source(src) as cine:
        assert len(pngs) == len(cine) == 10
        rows, cols = cine.meta.rows, cine.meta.cols
    masks = {}
    for i, p in enumerate(pngs):
        m = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
        assert m.shape == (rows, cols) and set(np.unique(m)) <= {0, 255}
        masks[i] = m > 0
    seg = pydicom.dcmread(folder / f"{folder.name}_seg.dcm")
    assert seg.Modality == "SEG" and seg.SegmentSequence[0].SegmentAlgorithmName == "tnseg-lite"
    # frames of the SEG (one per source frame) carry the same pixels as the PNGs
    seg_pixels = seg.pixel_array.reshape(-1, rows, cols).astype(bool)
    refs = [int(f.DerivationImageSequence[0].SourceImageSequence[0].ReferencedFrameNumber) for f in seg.PerFrameFunctionalGroupsSequence]
    for k, frame_number in enumerate(refs):
        assert np.array_equal(seg_pixels[k], masks[frame_number - 1])


def test_segment_bad_input_is_one_line(tmp_path):
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"\x00" * 10)
    r = subprocess.run([sys.executable, "-m", "tnseg_desktop", "segment", str(bad), "--out", str(tmp_path / "o")], capture_output=True, text=True, timeout=300)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "bad.dcm" in lines[0]


def _segment(*args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tnseg_desktop", "segment", *args, "--device", "cpu"], capture_output=True, text=True, timeout=timeout)


def test_out_that_is_a_file_is_one_line_user_error(tmp_path, shared_data):
    taken = tmp_path / "taken.txt"
    taken.write_text("not a folder")
    r = _segment(str(shared_data / "dicom" / "US1_UNCR.dcm"), "--out", str(taken))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "taken.txt" in lines[0] and "folder" in lines[0] and "internal error" not in lines[0]
    assert taken.read_text() == "not a folder"


def test_prompt_for_a_model_that_cannot_use_one_is_refused(tmp_path, shared_data):
    r = _segment(str(shared_data / "dicom" / "US1_UNCR.dcm"), "--out", str(tmp_path / "o"), "--model", "tnseg-lite", "--prompt", "nodule")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "tnseg-lite" in lines[0] and "cannot use a text prompt" in lines[0]
    assert not list((tmp_path / "o").rglob("*.png"))


def test_several_inputs_every_one_tried_each_failure_on_its_line_one_layout(tmp_path, shared_data):
    image = tmp_path / "in" / "ddti_frame.png"
    image.parent.mkdir()
    image.write_bytes(sorted((shared_data / "ddti" / "val" / "images").glob("*.png"))[0].read_bytes())
    bad = tmp_path / "in" / "broken.dcm"
    bad.write_bytes(b"\x00" * 10)
    missing = tmp_path / "in" / "gone.dcm"
    dicom = shared_data / "dicom" / "US1_UNCR.dcm"
    out = tmp_path / "out"
    r = _segment(str(image), str(bad), str(missing), str(dicom), "--out", str(out), "--keep-names")
    assert r.returncode != 0
    errors = r.stderr.strip().splitlines()
    errors = [line for line in errors if line.startswith("tnseg-desktop:")]
    assert len(errors) == 2 and "broken.dcm" in errors[0] and "gone.dcm" in errors[1]
    # the good inputs after the bad ones were segmented too, in the same layout as a multi-frame input
    for name, shape in (("ddti_frame", cv2.imread(str(image), cv2.IMREAD_UNCHANGED).shape[:2]), ("US1_UNCR", (480, 640))):
        pngs = sorted((out / name).glob("*.png"))
        assert [p.name for p in pngs] == ["frame_0000.png"]
        assert cv2.imread(str(pngs[0]), cv2.IMREAD_UNCHANGED).shape == shape
    assert sorted(p.name for p in out.iterdir()) == ["US1_UNCR", "ddti_frame"]
    assert "2 of 4 inputs failed" in r.stdout


def test_a_two_view_frame_is_segmented_within_one_ultrasound_region(tmp_path, shared_data):
    src = shared_data / "dicom" / "gdcm-US-ALOKA-16.dcm"
    with open_source(src) as cine:
        regions = cine.meta.image_regions
    assert len(regions) == 2  # the two side-by-side views
    r = _segment(str(src), "--out", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr
    (folder,) = (tmp_path / "o").iterdir()
    mask = cv2.imread(str(folder / "frame_0000.png"), cv2.IMREAD_UNCHANGED) > 0
    inside = [int(mask[y0:y1 + 1, x0:x1 + 1].sum()) for x0, y0, x1, y1 in regions]
    assert mask.sum() > 0 and max(inside) == mask.sum() and min(inside) == 0


def test_a_file_name_with_a_newline_and_an_ansi_code_is_escaped_on_its_one_line(tmp_path):
    bad = tmp_path / "Doe\nJane\x1b[2J.dcm"
    bad.write_bytes(b"\x00" * 10)
    r = subprocess.run([sys.executable, "-m", "tnseg_desktop", "segment", str(bad), "--out", str(tmp_path / "o")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "\x1b" not in r.stderr and "Doe\\nJane\\x1b[2J.dcm" in lines[0]


def test_outputs_are_named_by_the_de_identified_study_key_not_the_patients_file_name(tmp_path, shared_data):
    named = tmp_path / "in" / "DOE_JANE_1234567.dcm"  # file names often carry the patient's name or ID
    named.parent.mkdir()
    named.write_bytes((shared_data / "dicom" / "US1_UNCR.dcm").read_bytes())
    copy = tmp_path / "in" / "copy.dcm"
    copy.write_bytes(named.read_bytes())
    out = tmp_path / "out"
    r = _segment(str(named), str(copy), "--out", str(out), "--format", "seg")
    assert r.returncode == 0, r.stderr
    with open_source(named) as cine:
        key = study_key(content_hash(cine, cine.meta))
    assert sorted(p.name for p in out.iterdir()) == [key, f"{key}_2"]  # the same study twice: two folders
    written = [p.name for p in out.rglob("*")]
    assert not [n for n in written if "DOE" in n or "1234567" in n]
    assert (out / key / f"{key}_seg.dcm").is_file() and (out / key / "frame_0000.png").is_file()
    assert f"DOE_JANE_1234567.dcm -> {key}" in r.stderr  # the user is told which input became which folder
    # asking for the input's names keeps them
    r = _segment(str(named), "--out", str(tmp_path / "kept"), "--keep-names")
    assert r.returncode == 0, r.stderr
    assert [p.name for p in (tmp_path / "kept").iterdir()] == ["DOE_JANE_1234567"]


def test_library_warnings_about_a_non_conformant_header_are_not_printed_raw(tmp_path, shared_data):
    from pydicom import config
    from pydicom.dataelem import DataElement

    src = tmp_path / "odd_header.dcm"
    src.write_bytes((shared_data / "dicom" / "US1_UNCR.dcm").read_bytes())
    mode = config.settings.writing_validation_mode
    config.settings.writing_validation_mode = config.IGNORE
    try:
        ds = pydicom.dcmread(src)
        ds.add(DataElement(0x00080020, "DA", "2024-13-45"))  # StudyDate: no such month; real files carry such values
        ds.save_as(src)
    finally:
        config.settings.writing_validation_mode = mode
    r = _segment(str(src), "--out", str(tmp_path / "o"), "--format", "seg")
    assert r.returncode == 0, r.stderr
    assert "Warning" not in r.stderr and "site-packages" not in r.stderr, r.stderr  # printed raw before
    r = _segment(str(src), "--out", str(tmp_path / "o2"), "--format", "seg", "--debug")
    assert r.returncode == 0 and "Invalid value for VR DA" in r.stderr  # --debug still shows them
