import subprocess
import sys

import cv2
import numpy as np
import pydicom

from tnseg_desktop.io import open_source


def test_segment_writes_one_mask_per_frame_and_a_seg(tmp_path, shared_data):
    src = shared_data / "dicom" / "US-PAL-8-10x-echo.dcm"
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "tnseg_desktop", "segment", str(src), "--out", str(out), "--format", "seg", "--model", "tnseg-lite", "--device", "cpu"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    folder = out / "US-PAL-8-10x-echo"
    pngs = sorted(folder.glob("frame_*.png"))
    with open_source(src) as cine:
        assert len(pngs) == len(cine) == 10
        rows, cols = cine.meta.rows, cine.meta.cols
    masks = {}
    for i, p in enumerate(pngs):
        m = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
        assert m.shape == (rows, cols) and set(np.unique(m)) <= {0, 255}
        masks[i] = m > 0
    seg = pydicom.dcmread(folder / "US-PAL-8-10x-echo_seg.dcm")
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
