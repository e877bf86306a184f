"""Decompression bombs: sizes are bounded from the header before anything is decoded or inflated.

The hostile files are built here: a deflated dataset whose zero-filled pixel
data compresses to a few MB but inflates to hundreds, and a JPEG file whose
header claims 16384x16384 frames. Each is refused with one sentence naming
the file, and memory stays far below what inflating would take.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import tracemalloc
import zlib
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import DeflatedExplicitVRLittleEndian, JPEGBaseline8Bit, generate_uid

from tnseg_desktop.io import errors as E
from tnseg_desktop.io import open_source
from tnseg_desktop.io.series import open_folder

REPO = Path(__file__).resolve().parents[2]
US_MULTIFRAME = "1.2.840.10008.5.1.4.1.1.3.1"
ZEROS = bytes(16 << 20)


def _header(rows: int, cols: int, frames: int, syntax: str) -> tuple[FileMetaDataset, Dataset]:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = US_MULTIFRAME
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = syntax
    ds = Dataset()
    ds.SOPClassUID = US_MULTIFRAME
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "US"
    ds.Rows, ds.Columns, ds.NumberOfFrames = rows, cols, frames
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    return meta, ds


def _preamble_and_meta(meta: FileMetaDataset) -> bytes:
    fp = DicomBytesIO()
    fp.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(fp, meta, enforce_standard=True)
    return fp.getvalue()


def _dataset_bytes(ds: Dataset) -> bytes:
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, False
    write_dataset(fp, ds)
    return fp.getvalue()


def make_deflated_bomb(path: Path, rows: int, cols: int, frames: int, pixel_bytes: int, declared: int | None = None) -> Path:
    """A deflated DICOM file whose pixel data is ``pixel_bytes`` zeros (its element says ``declared`` bytes)."""
    meta, ds = _header(rows, cols, frames, DeflatedExplicitVRLittleEndian)
    length = pixel_bytes if declared is None else declared
    z = zlib.compressobj(1, zlib.DEFLATED, -zlib.MAX_WBITS)
    with open(path, "wb") as f:
        f.write(_preamble_and_meta(meta))
        f.write(z.compress(_dataset_bytes(ds) + struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OB", 0, length)))
        left = pixel_bytes
        while left > 0:
            chunk = ZEROS[: min(left, len(ZEROS))]
            f.write(z.compress(chunk))
            left -= len(chunk)
        f.write(z.flush())
    return path


def make_jpeg_giant(path: Path, side: int = 16384, frames: int = 2) -> Path:
    """A JPEG Baseline file whose header claims ``side`` x ``side`` frames (the fragments are small)."""
    meta, ds = _header(side, side, frames, JPEGBaseline8Bit)
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "YBR_FULL_422"
    ds.PlanarConfiguration = 0
    fragment = b"\xff\xd8" + b"\0" * 1022 + b"\xff\xd9"
    items = struct.pack("<HHI", 0xFFFE, 0xE000, 0)  # empty basic offset table
    for _ in range(frames):
        items += struct.pack("<HHI", 0xFFFE, 0xE000, len(fragment)) + fragment
    items += struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    with open(path, "wb") as f:
        f.write(_preamble_and_meta(meta))
        f.write(_dataset_bytes(ds))
        f.write(struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OB", 0, 0xFFFFFFFF) + items)
    return path


def _peak_python_bytes(fn) -> int:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _refused(path: Path) -> E.LoadError:
    with pytest.raises(E.LoadError) as info:
        open_source(path).close()
    exc = info.value
    assert exc.path == str(path)
    assert "\n" not in exc.one_line()
    return exc


def test_deflated_file_claiming_more_than_the_limit_is_refused_before_inflating(tmp_path: Path) -> None:
    # 1024x1024 x 3000 frames claims 3 GiB; 512 MiB of zeros are really there (2 MB on disk)
    bomb = make_deflated_bomb(tmp_path / "bomb.dcm", 1024, 1024, 3000, 512 << 20, declared=3000 << 20)
    assert bomb.stat().st_size < 4 << 20
    peak = _peak_python_bytes(lambda: _refused(bomb))
    assert peak < 32 << 20, f"{peak / 2**20:.0f} MiB traced while refusing a bomb"
    exc = _refused(bomb)
    assert isinstance(exc, E.AbsurdDimensionsError)
    assert "3000 frames" in exc.message and "more than" in exc.message


def test_deflated_file_inflating_past_its_header_is_refused_with_bounded_memory(tmp_path: Path) -> None:
    # the header says one 64x64 frame (4 KB); the stream goes on for 512 MiB of zeros
    bomb = make_deflated_bomb(tmp_path / "liar.dcm", 64, 64, 1, 512 << 20, declared=4096)
    peak = _peak_python_bytes(lambda: _refused(bomb))
    assert peak < 32 << 20, f"{peak / 2**20:.0f} MiB traced while refusing a bomb"
    exc = _refused(bomb)
    assert isinstance(exc, E.CorruptPixelDataError)
    assert "inflates to more than its header describes" in exc.message


def test_deflated_file_over_the_in_memory_cap_is_refused(tmp_path: Path) -> None:
    # 1024x1024 x 600 frames is 600 MiB: under the decoded limit, over what a deflated file may hold in memory
    bomb = make_deflated_bomb(tmp_path / "big.dcm", 1024, 1024, 600, 64 << 20, declared=600 << 20)
    peak = _peak_python_bytes(lambda: _refused(bomb))
    assert peak < 32 << 20
    assert "a deflated file may hold" in _refused(bomb).message


def test_honest_deflated_file_still_opens(tmp_path: Path) -> None:
    path = make_deflated_bomb(tmp_path / "ok.dcm", 64, 48, 3, 64 * 48 * 3)
    with open_source(path) as cine:
        assert len(cine) == 3
        assert cine.frame(2).shape == (64, 48)
        assert cine.meta.codec == "uncompressed (deflated)"


def test_jpeg_header_claiming_16384_square_frames_is_refused_before_decoding(tmp_path: Path) -> None:
    giant = make_jpeg_giant(tmp_path / "giant.dcm")
    peak = _peak_python_bytes(lambda: _refused(giant))
    assert peak < 32 << 20
    exc = _refused(giant)
    assert isinstance(exc, E.AbsurdDimensionsError)
    assert "16384x16384" in exc.message and "8192" in exc.message


def test_folder_listing_does_not_inflate_a_deflated_bomb(tmp_path: Path, shared_data: Path) -> None:
    folder = tmp_path / "series"
    folder.mkdir()
    real = shared_data / "dicom" / "US-PAL-8-10x-echo.dcm"
    (folder / "a_real.dcm").write_bytes(real.read_bytes())
    make_deflated_bomb(folder / "b_bomb.dcm", 1024, 1024, 3000, 512 << 20, declared=3000 << 20)

    def listing() -> None:
        source = open_folder(folder)
        try:
            assert [Path(p).name for p in source.meta.files] == ["a_real.dcm"]
        finally:
            source.close()

    peak = _peak_python_bytes(listing)
    assert peak < 64 << 20, f"{peak / 2**20:.0f} MiB traced while listing the folder"


def test_info_refuses_a_bomb_in_one_line(tmp_path: Path) -> None:
    bomb = make_deflated_bomb(tmp_path / "bomb.dcm", 1024, 1024, 3000, 256 << 20, declared=3000 << 20)
    # the child reports its own peak resident memory: VmHWM belongs to its address space, which exec
    # starts afresh (getrusage's ru_maxrss would carry the forked parent's size across exec on Linux)
    script = (
        "import re, sys\n"
        "from tnseg_desktop.cli import main\n"
        "code = main(['info', sys.argv[1]])\n"
        "hwm = re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read())\n"
        "print(hwm.group(1) if hwm else 0, file=sys.stdout)\n"
        "sys.exit(code)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = subprocess.run([sys.executable, "-c", script, str(bomb)], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode != 0
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "bomb.dcm" in lines[0] and "more than" in lines[0], run.stderr
    max_rss_kib = int(run.stdout.strip().splitlines()[-1])
    assert max_rss_kib < 300 * 1024, f"info peaked at {max_rss_kib // 1024} MiB"
