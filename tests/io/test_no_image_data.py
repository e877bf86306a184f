"""A valid DICOM file without pixel data says so; a file cut inside its header still says it is truncated."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

from tnseg_desktop.io import open_source
from tnseg_desktop.io.errors import CorruptFileError, NoPixelDataError


def _header_only(shared_data: Path, out: Path, *drop: str) -> Path:
    ds = pydicom.dcmread(shared_data / "dicom" / "US1_UNCR.dcm")
    for keyword in ("PixelData", *drop):
        delattr(ds, keyword)
    ds.save_as(out)
    return out


@pytest.mark.parametrize("drop", [(), ("Rows", "Columns")], ids=["with-rows", "without-rows"])
def test_valid_dicom_without_pixel_data_has_no_image_data(shared_data: Path, tmp_path: Path, drop: tuple[str, ...]) -> None:
    path = _header_only(shared_data, tmp_path / "header_only.dcm", *drop)
    with pytest.raises(NoPixelDataError) as info:
        open_source(path)
    assert "has no image data" in str(info.value)
    r = subprocess.run([sys.executable, "-m", "tnseg_desktop", "info", str(path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [f"tnseg-desktop: {path}: The DICOM file has no image data (it holds no Pixel Data element)."]


def test_header_cut_inside_an_element_is_still_truncated(shared_data: Path, tmp_path: Path) -> None:
    data = _header_only(shared_data, tmp_path / "full.dcm", "Rows", "Columns").read_bytes()
    ds = pydicom.dcmread(tmp_path / "full.dcm")
    # a cut exactly where an element ends leaves a valid, shorter file: only cuts inside elements are damage
    boundaries = {raw.value_tell + raw.length for raw in ds._dict.values()}
    cuts = [n for n in range(300, len(data), 5) if n not in boundaries]
    assert len(cuts) > 100
    for n in cuts:
        cut = tmp_path / f"cut_{n}.dcm"
        cut.write_bytes(data[:n])
        with pytest.raises(CorruptFileError) as info:
            open_source(cut)
        assert "truncated" in str(info.value), n
