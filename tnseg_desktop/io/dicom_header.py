"""Reading a DICOM header without decoding its pixels.

The transfer syntax is found by walking the file meta elements before pydicom
reads anything; a deflated file is inflated only as far as its pixel data
element and never past fixed caps; the image dimensions a header claims are
checked against limits before anything is decoded or inflated; `cine_meta`
turns a header into the cine's `CineMeta`.
"""

from __future__ import annotations

import logging
import os
import struct
import warnings
import zlib
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian

from tnseg_desktop.io.calibration import read_calibration
from tnseg_desktop.io.errors import AbsurdDimensionsError, CorruptFileError, LoadError
from tnseg_desktop.io.frame_rate import read_frame_rate
from tnseg_desktop.io.types import CineMeta

log = logging.getLogger(__name__)

# Limits checked from the header before anything is decoded or inflated, set where no real ultrasound
# cine reaches: scanners and screen captures are at most ~2k pixels a side, and a 30 s loop of
# 1024x768 colour at 30 fps (longer than thyroid cines are recorded) decodes to 2.1 GB. A header past
# them is a damaged or hostile file, and decoding it anyway would take gigabytes.
MAX_SIDE = 8192
MAX_FRAMES = 100_000
MAX_FRAME_BYTES = MAX_SIDE * MAX_SIDE * 3  # one 8192x8192 colour frame, 192 MiB
MAX_DECODED_BYTES = 2 << 30  # every frame decoded, 2 GiB
# A deflated file cannot be memory-mapped: the whole dataset is held inflated in memory. Scanners store
# cines as JPEG or native pixels (deflate is for reports), so this cap costs no real file anything.
MAX_INFLATED_BYTES = 512 << 20
# the header of a deflated file (everything before its pixel data) must inflate to no more than this
MAX_DEFLATED_HEADER_BYTES = 16 << 20
INFLATE_SLACK = 1 << 20  # trailing elements or padding after the pixel data of a deflated file

PIXEL_DATA = 0x7FE00010
FLOAT_PIXEL_TAGS = (0x7FE00008, 0x7FE00009)
LONG_VRS = {b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"UN", b"UT", b"SQ", b"UC", b"UR"}

# SOP classes (by prefix) that never hold a displayable image; used to word the error when pixel data is absent
NON_IMAGE_SOP_PREFIXES = {
    "1.2.840.10008.5.1.4.1.1.88.": "a structured report",
    "1.2.840.10008.5.1.4.1.1.104.": "an encapsulated document",
    "1.2.840.10008.5.1.4.1.1.9.": "a waveform",
    "1.2.840.10008.5.1.4.1.1.11.": "a presentation state",
    "1.2.840.10008.5.1.4.1.1.66": "a raw data or registration object",
    "1.2.840.10008.5.1.4.1.1.481.2": "a radiotherapy dose",
    "1.2.840.10008.5.1.4.1.1.481.3": "a radiotherapy structure set",
    "1.2.840.10008.5.1.4.1.1.481.5": "a radiotherapy plan",
    "1.2.840.10008.5.1.4.1.1.67": "a real world value mapping",
    "1.2.840.10008.5.1.4.1.1.68.": "a surface model",
    "1.2.840.10008.5.1.4.1.1.78.": "a measurements object",
    "1.2.840.10008.5.1.4.1.1.79.": "a measurements object",
    "1.2.840.10008.5.1.4.1.1.80.": "a measurements object",
    "1.2.840.10008.5.1.4.1.1.81.": "a measurements object",
    "1.2.840.10008.5.1.4.1.1.82.": "a measurements object",
    "1.2.840.10008.5.1.4.1.1.90.": "a content assessment",
    "1.2.840.10008.5.1.4.1.1.200.": "a protocol",
    "1.2.840.10008.1.3.10": "a DICOMDIR (media directory)",
}
STORAGE_PREFIX = "1.2.840.10008.5.1.4.1.1."

CODEC_NAMES = {
    "1.2.840.10008.1.2": "uncompressed",
    "1.2.840.10008.1.2.1": "uncompressed",
    "1.2.840.10008.1.2.2": "uncompressed (big endian)",
    "1.2.840.10008.1.2.1.99": "uncompressed (deflated)",
    "1.2.840.10008.1.2.5": "RLE Lossless",
    "1.2.840.10008.1.2.4.50": "JPEG Baseline",
    "1.2.840.10008.1.2.4.51": "JPEG Extended",
    "1.2.840.10008.1.2.4.57": "JPEG Lossless",
    "1.2.840.10008.1.2.4.70": "JPEG Lossless SV1",
    "1.2.840.10008.1.2.4.80": "JPEG-LS Lossless",
    "1.2.840.10008.1.2.4.81": "JPEG-LS Near-lossless",
    "1.2.840.10008.1.2.4.90": "JPEG 2000 Lossless",
    "1.2.840.10008.1.2.4.91": "JPEG 2000",
    "1.2.840.10008.1.2.4.201": "HTJ2K Lossless",
    "1.2.840.10008.1.2.4.202": "HTJ2K Lossless RPCL",
    "1.2.840.10008.1.2.4.203": "HTJ2K",
}


def looks_like_dicom(head: bytes) -> bool:
    """DICM magic after the preamble, or a preamble-less file starting with a
    group 0002/0008 element (what old scanners and some exports write)."""
    if len(head) >= 132 and head[128:132] == b"DICM":
        return True
    if len(head) < 8:
        return False
    group, element = struct.unpack_from("<HH", head, 0)
    if group not in (0x0002, 0x0008):
        return False
    vr = head[4:6]
    return element < 0x0100 and (vr.isalpha() and vr.isupper() or struct.unpack_from("<I", head, 4)[0] < 1 << 16)


def message_for_non_image(sop_class: str) -> str | None:
    for prefix, what in NON_IMAGE_SOP_PREFIXES.items():
        if sop_class.startswith(prefix):
            return f"This DICOM file is {what}, not an image."
    return None


def header_cut_short(ds: Dataset, end: int, size: int) -> bool:
    """True when the header read stopped inside an element rather than at the end of a complete one.

    ``end`` is where pydicom stopped reading, ``size`` the file's length.
    """
    elements = ds._dict  # the raw elements as read, before pydicom converts their values
    if not elements:
        return True
    raw = elements[next(reversed(elements))]
    tell, length, value = getattr(raw, "value_tell", None), getattr(raw, "length", None), getattr(raw, "value", None)
    if isinstance(value, bytes) and isinstance(length, int) and isinstance(tell, int) and length != 0xFFFFFFFF:
        # a short last value, or a few bytes after it that are too few for another element
        return len(value) < length or tell + length < size
    return end < size


def human_bytes(n: int) -> str:
    return f"{n / (1 << 30):.1f} GB" if n >= 1 << 30 else f"{n / (1 << 20):.0f} MB"


def scan_file_meta(f: Any, start: int) -> tuple[int, str | None]:
    """(offset just after the group 0002 elements, their transfer syntax UID or None).

    A walk over element headers only, so that the transfer syntax is known before
    pydicom reads anything: pydicom inflates a whole deflated file when it opens it.
    """
    f.seek(start)
    pos, syntax = start, None
    while True:
        head = f.read(8)
        if len(head) < 8:
            break
        group, element = struct.unpack_from("<HH", head, 0)
        if group != 0x0002:
            break
        vr = head[4:6]
        if vr in LONG_VRS:
            more = f.read(4)
            if len(more) < 4:
                break
            (length,) = struct.unpack("<I", more)
            header_len = 12
        elif vr.isalpha() and vr.isupper():
            (length,) = struct.unpack_from("<H", head, 6)
            header_len = 8
        else:  # implicit VR meta, written by some old tools
            (length,) = struct.unpack_from("<I", head, 4)
            header_len = 8
        if length > 1 << 16:
            break  # no file meta element is this long: leave the judgement to pydicom
        value = f.read(length)
        if element == 0x0010:
            syntax = value.decode("ascii", "replace").strip(" \x00")
        pos += header_len + length
    return pos, syntax


def _tag_at(buf: bytearray, pos: int) -> int | None:
    """The little-endian tag at ``pos``, None past the end."""
    if pos < 0 or pos + 4 > len(buf):
        return None
    group, element = struct.unpack_from("<HH", buf, pos)
    return (group << 16) | element


def _at_pixel_data(tag: Any, vr: Any, length: int) -> bool:
    return int(tag) in (PIXEL_DATA, *FLOAT_PIXEL_TAGS)


class CappedInflater:
    """Inflates a raw deflate stream from a file into one buffer, never past the length asked for."""

    def __init__(self, f: Any) -> None:
        self._f = f
        self._z = zlib.decompressobj(-zlib.MAX_WBITS)
        self.out = bytearray()
        self.ended = False  # the stream (or the file) is over

    def fill(self, upto: int) -> None:
        """Inflate until ``upto`` bytes are out or the stream ends."""
        z = self._z
        while len(self.out) < upto and not self.ended:
            data = z.unconsumed_tail or self._f.read(1 << 20)
            if not data:
                # input exhausted: what zlib still holds is at most one window
                self.out += z.flush()
                self.ended = True
                break
            self.out += z.decompress(data, upto - len(self.out))
            if z.eof:
                self.ended = True


def deflated_header(
    f: Any, path: Path, preamble: bytes | None, meta_start: int, meta_end: int
) -> tuple[FileDataset, int, int | None, CappedInflater]:
    """(header, offset of the pixel data element in the inflated dataset, its tag or None, the inflater).

    The dataset is inflated a little at a time until its pixel data element
    shows, never more than MAX_DEFLATED_HEADER_BYTES.
    """
    f.seek(meta_start)
    meta_bytes = f.read(meta_end - meta_start)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            file_meta = FileMetaDataset(read_dataset(DicomBytesIO(meta_bytes), False, True))
    except Exception:
        raise CorruptFileError("The DICOM header is damaged or the file is truncated.", path) from None
    f.seek(meta_end)
    inflater = CappedInflater(f)
    want = 64 << 10
    try:
        while True:
            inflater.fill(want)
            fp = DicomBytesIO(bytes(inflater.out))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                dataset = read_dataset(fp, False, True, stop_when=_at_pixel_data)
            pixel_pos = fp.tell()
            tag = _tag_at(inflater.out, pixel_pos)
            if tag in (PIXEL_DATA, *FLOAT_PIXEL_TAGS) or inflater.ended:
                break
            if want >= MAX_DEFLATED_HEADER_BYTES:
                raise AbsurdDimensionsError(
                    f"The deflated DICOM header inflates to more than {human_bytes(MAX_DEFLATED_HEADER_BYTES)}; "
                    "the file was not opened.",
                    path,
                )
            want *= 4
    except zlib.error:
        raise CorruptFileError("The compressed (deflated) DICOM file is damaged or truncated.", path) from None
    except LoadError:
        raise
    except Exception as exc:
        log.debug("deflated header read failed: %s", type(exc).__name__)
        raise CorruptFileError("The DICOM header is damaged or the file is truncated.", path) from None
    ds = FileDataset(str(path), dataset, preamble=preamble[:128] if preamble else None, file_meta=file_meta,
                     is_implicit_VR=False, is_little_endian=True)
    return ds, pixel_pos, tag if tag in (PIXEL_DATA, *FLOAT_PIXEL_TAGS) else None, inflater


def check_dimensions(ds: Dataset, path: Path) -> tuple[int, int, int, int]:
    """(rows, columns, samples per pixel, frames) from a header, refused when past the size limits."""

    def as_int(keyword: str, default: int | None = None) -> int | None:
        value = ds.get(keyword, None)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except (TypeError, ValueError):
            return None

    rows, cols = as_int("Rows"), as_int("Columns")
    samples = as_int("SamplesPerPixel", 1)
    nframes = as_int("NumberOfFrames", 1)
    bits_alloc = as_int("BitsAllocated")
    bits_stored = as_int("BitsStored", bits_alloc)
    if rows is None or cols is None:
        raise AbsurdDimensionsError("The image size (rows and columns) is missing from the file.", path)
    if not (0 < rows <= MAX_SIDE and 0 < cols <= MAX_SIDE):
        raise AbsurdDimensionsError(
            f"The image size {cols}x{rows} pixels is not plausible (at most {MAX_SIDE} pixels a side).", path
        )
    if nframes is None or nframes == 0:
        nframes = 1  # common writer mistake; pydicom reads it as one frame too
    if not 0 < nframes <= MAX_FRAMES:
        raise AbsurdDimensionsError(f"The number of frames ({nframes}) is not plausible.", path)
    if samples not in (1, 3):
        raise AbsurdDimensionsError(f"Images with {samples} samples per pixel are not supported.", path)
    if bits_alloc not in (1, 8, 16, 32) or bits_stored is None or not 0 < bits_stored <= bits_alloc:
        raise AbsurdDimensionsError("The pixel bit depth in the header is not valid.", path)
    frame_bytes = rows * cols * samples * max(bits_alloc // 8, 1)
    if frame_bytes > MAX_FRAME_BYTES:
        raise AbsurdDimensionsError(
            f"A single frame of this image would decode to {human_bytes(frame_bytes)}, more than the "
            f"{human_bytes(MAX_FRAME_BYTES)} this viewer opens.",
            path,
        )
    if frame_bytes * nframes > MAX_DECODED_BYTES:
        raise AbsurdDimensionsError(
            f"The {nframes} frames of {cols}x{rows} pixels would decode to {human_bytes(frame_bytes * nframes)}, "
            f"more than the {human_bytes(MAX_DECODED_BYTES)} this viewer opens.",
            path,
        )
    return rows, cols, samples, nframes


def read_header(path: str | os.PathLike, specific_tags: list[str] | None = None) -> Dataset:
    """The header of one DICOM file up to its pixel data; a deflated file is inflated only that far.

    Raises a `LoadError` subclass (or pydicom's own error for a non-DICOM file).
    """
    p = Path(path)
    with open(p, "rb") as f:
        head = f.read(132)
        has_preamble = head[128:132] == b"DICM"
        meta_start = 132 if has_preamble else 0
        meta_end, syntax = scan_file_meta(f, meta_start)
        if syntax == DeflatedExplicitVRLittleEndian:
            return deflated_header(f, p, head if has_preamble else None, meta_start, meta_end)[0]
        f.seek(0)
        return pydicom.dcmread(f, stop_before_pixels=True, force=not has_preamble, specific_tags=specific_tags)


def cine_meta(
    ds: Dataset, path: Path, tsyntax: UID, rows: int, cols: int, channels: int, nframes: int, photometric: str
) -> CineMeta:
    """What a DICOM header says about its cine: size, timing, calibration, codec and identity."""
    fps, fps_source = read_frame_rate(ds)
    cal = read_calibration(ds, rows, cols)

    def text(keyword: str) -> str:
        value = ds.get(keyword, None)
        return "" if value is None else str(value).strip()

    burned = text("BurnedInAnnotation").upper() or None
    return CineMeta(
        source_path=str(path),
        frames=nframes,
        rows=rows,
        cols=cols,
        channels=channels,
        fps=fps,
        fps_source=fps_source,
        pixel_spacing_mm=cal.pixel_spacing_mm,
        calibration_source=cal.source,
        us_regions=cal.regions,
        calibration_region=cal.region,
        image_regions=cal.image_regions,
        transfer_syntax=str(tsyntax),
        transfer_syntax_name=tsyntax.name,
        codec=CODEC_NAMES.get(str(tsyntax), tsyntax.name),
        photometric=photometric or None,
        bits_stored=int(ds.get("BitsStored", 8) or 8),
        modality=text("Modality"),
        manufacturer=text("Manufacturer"),
        study_date=text("StudyDate"),
        patient_name=text("PatientName"),
        patient_id=text("PatientID"),
        study_instance_uid=text("StudyInstanceUID"),
        series_instance_uid=text("SeriesInstanceUID"),
        sop_instance_uid=text("SOPInstanceUID"),
        sop_class_uid=text("SOPClassUID"),
        burned_in_annotation=burned,
        is_dicom=True,
        instance_number=_int_or_none(ds.get("InstanceNumber", None)),
    )


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
