"""Every real file loads with the right frames, shape and pixels (pydicom's decode as reference)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from loader_fixtures import color3d_path, pydicom_test_file, ybr_color_path
from loader_reference import reference_frames
from tnseg_desktop.io import open_source

SHARED_FILES = {
    # name: (frames, rows, cols, channels)
    "US-PAL-8-10x-echo.dcm": (10, 430, 600, 3),
    "OBXXXX1A_rle_2frame.dcm": (2, 600, 800, 3),
    "JPEGLosslessP14SV1_3s_2f_u_08_08.dcm": (2, 768, 1024, 3),
    "JPEGExtended_3s_1f_u_08_08.dcm": (1, 576, 768, 3),
    "US1_UNCR.dcm": (1, 480, 640, 3),
    "gdcm-US-ALOKA-16.dcm": (1, 480, 640, 3),
}

# pydicom's own test files covering the transfer syntaxes and photometrics the loader promises
PYDICOM_FILES = [
    "MR_small_bigendian.dcm",  # big endian, 16-bit grayscale, window
    "SC_rgb_expb_2frame.dcm",  # big endian RGB, 2 frames
    "ExplVR_BigEnd.dcm",  # big endian RGB planar configuration 1
    "image_dfl.dcm",  # deflated
    "SC_rgb_rle.dcm",  # RLE RGB
    "MR_small_RLE.dcm",  # RLE 16-bit
    "emri_small_RLE.dcm",  # RLE 16-bit, 10 frames
    "emri_small_big_endian.dcm",
    "SC_rgb_jpeg_dcmtk.dcm",  # JPEG baseline YBR_FULL
    "SC_rgb_dcmtk_+eb+cy+s2.dcm",  # JPEG baseline YBR_FULL_422
    "SC_jpeg_no_color_transform.dcm",  # JPEG baseline RGB
    "JPGExtended.dcm",  # JPEG extended 12-bit grayscale
    "JPEG-LL.dcm",  # JPEG lossless 16-bit grayscale
    "SC_rgb_jpeg_gdcm.dcm",  # JPEG lossless RGB
    "JPEG2000.dcm",  # JPEG 2000 signed 16-bit
    "MR_small_jp2klossless.dcm",
    "emri_small_jpeg_2k_lossless.dcm",  # JPEG 2000, 10 frames
    "US1_J2KR.dcm",  # JPEG 2000 YBR_RCT
    "US1_J2KI.dcm",  # JPEG 2000 YBR_ICT
    "SC_ybr_full_422_uncompressed.dcm",  # native YBR_FULL_422
    "color-pl.dcm",  # planar configuration 1
    "SC_rgb_2frame.dcm",
    "SC_rgb_rle_16bit_2frame.dcm",  # 16-bit RGB
    "SC_rgb_32bit.dcm",
    "OBXXXX1A.dcm",  # native PALETTE COLOR
    "CT_small.dcm",  # rescale + window
]


def _assert_loads_like_pydicom(path: Path, expected: tuple[int, int, int, int] | None = None, per_frame: bool = False) -> None:
    ref = reference_frames(path, per_frame=per_frame)
    with open_source(path) as cine:
        m = cine.meta
        if expected is not None:
            assert (m.frames, m.rows, m.cols, m.channels) == expected
        assert len(cine) == ref.shape[0]
        for i in range(len(cine)):
            frame = cine.frame(i)
            assert frame.dtype == np.uint8
            assert not frame.flags.writeable
            assert frame.shape == ref.shape[1:], f"frame {i}"
            np.testing.assert_array_equal(frame, ref[i], err_msg=f"{path.name} frame {i}")


@pytest.mark.parametrize("name", sorted(SHARED_FILES))
def test_shared_dicom_files(shared_data: Path, name: str) -> None:
    _assert_loads_like_pydicom(shared_data / "dicom" / name, SHARED_FILES[name])


def test_every_shared_dicom_file_is_covered(shared_data: Path) -> None:
    present = {p.name for p in (shared_data / "dicom").glob("*.dcm")}
    assert present <= set(SHARED_FILES), f"new files without expectations: {present - set(SHARED_FILES)}"


def test_ybr_color_example() -> None:
    _assert_loads_like_pydicom(ybr_color_path(), (30, 240, 320, 3))


def test_color3d_jpeg_baseline() -> None:
    _assert_loads_like_pydicom(color3d_path(), (120, 480, 640, 3), per_frame=True)


def test_pydicom_per_frame_reference_matches_whole_decode() -> None:
    """The per-frame reference used for color3d is pydicom's whole-array decode (checked on the 30-frame loop)."""
    np.testing.assert_array_equal(reference_frames(ybr_color_path(), per_frame=True), reference_frames(ybr_color_path()))


@pytest.mark.parametrize("name", PYDICOM_FILES)
def test_pydicom_test_files(name: str) -> None:
    _assert_loads_like_pydicom(pydicom_test_file(name))


def test_monochrome1_is_inverted(tmp_path: Path) -> None:
    import pydicom

    src = pydicom_test_file("MR_small.dcm")
    ds = pydicom.dcmread(src)
    normal = open_source(src).frame(0)
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.save_as(tmp_path / "mono1.dcm")
    inverted = open_source(tmp_path / "mono1.dcm").frame(0)
    np.testing.assert_array_equal(inverted, 255 - normal)


def test_16bit_palette_entries_are_reduced_to_8_bits(shared_data: Path) -> None:
    import pydicom

    ds = pydicom.dcmread(shared_data / "dicom" / "gdcm-US-ALOKA-16.dcm", stop_before_pixels=True)
    assert ds.RedPaletteColorLookupTableDescriptor[2] == 16
    frame = open_source(shared_data / "dicom" / "gdcm-US-ALOKA-16.dcm").frame(0)
    assert frame.max() > 200  # not the near-black image that truncating the 16-bit values would give


def test_meta_of_real_cine(shared_data: Path) -> None:
    with open_source(shared_data / "dicom" / "US-PAL-8-10x-echo.dcm") as cine:
        m = cine.meta
        assert m.is_dicom and m.modality == "US"
        assert m.fps == pytest.approx(1000 / 76.0)
        assert m.fps_source == "FrameTime"
        assert m.photometric == "PALETTE COLOR"
        assert m.transfer_syntax == "1.2.840.10008.1.2.5"
        assert m.calibration_source == "uncalibrated" and m.mm_per_pixel is None
    with open_source(ybr_color_path()) as cine:
        # regions in cm, PhysicalDeltaX 0.05104970559477806 cm
        assert cine.meta.mm_per_pixel == pytest.approx(0.5104970559477806)
        assert cine.meta.calibration_source == "ultrasound region"


def test_16bit_without_window_uses_frame_range(tmp_path: Path) -> None:
    import pydicom

    ds = pydicom.dcmread(pydicom_test_file("emri_small_RLE.dcm"))
    for keyword in ("WindowCenter", "WindowWidth"):
        if keyword in ds:
            delattr(ds, keyword)
    ds.save_as(tmp_path / "nowindow.dcm")
    _assert_loads_like_pydicom(tmp_path / "nowindow.dcm")
    with open_source(tmp_path / "nowindow.dcm") as cine:
        assert cine.frame(0).min() == 0 and cine.frame(0).max() == 255
