"""One DICOM file as a lazily decoded frame source.

Opening reads only the header (up to the pixel data element), indexes where
each frame's bytes lie, and checks that they are all there; it decodes
nothing. `decode(i)` then reads and decodes frame i alone through pydicom's
own decoders, so a long loop shows frame 0 at once. The file is memory-mapped,
which keeps memory use flat for large uncompressed cines and lets several
threads read frames at the same time.
"""

from __future__ import annotations

import logging
import mmap
import os
import struct
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.errors import InvalidDicomError
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.pixels import get_decoder
from pydicom.pixels.processing import apply_color_lut
from pydicom.pixels.utils import as_pixel_options, get_expected_length
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from tnseg_desktop.io import encapsulated
from tnseg_desktop.io.calibration import read_calibration
from tnseg_desktop.io.errors import (
    AbsurdDimensionsError,
    CorruptFileError,
    CorruptPixelDataError,
    EmptyFileError,
    LoadError,
    MissingCodecError,
    NoPixelDataError,
    NotAnImageError,
    NotDicomError,
    SourceNotFoundError,
    UnsupportedFileError,
    UnsupportedTransferSyntaxError,
)
from tnseg_desktop.io.frame_rate import read_frame_rate
from tnseg_desktop.io.pixel_display import GrayMapper, gray_mapper_from_dataset, reduce_16bit_palette, rescale_color_to_uint8
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
_INFLATE_SLACK = 1 << 20  # trailing elements or padding after the pixel data of a deflated file

PIXEL_DATA = 0x7FE00010
FLOAT_PIXEL_TAGS = (0x7FE00008, 0x7FE00009)
_LONG_VRS = {b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"UN", b"UT", b"SQ", b"UC", b"UR"}

# SOP classes (by prefix) that never hold a displayable image; used to word the error when pixel data is absent
_NON_IMAGE_SOP_PREFIXES = {
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
_STORAGE_PREFIX = "1.2.840.10008.5.1.4.1.1."

# transfer syntax UID -> the PyPI package that lets pydicom decode it
_CODEC_PACKAGES = {
    "1.2.840.10008.1.2.4.50": "pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.51": "pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.57": "pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.70": "pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.80": "pyjpegls",
    "1.2.840.10008.1.2.4.81": "pyjpegls",
    "1.2.840.10008.1.2.4.90": "pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.91": "pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.201": "pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.202": "pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.203": "pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.5": "pylibjpeg-rle",
}

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


def _message_for_non_image(sop_class: str) -> str | None:
    for prefix, what in _NON_IMAGE_SOP_PREFIXES.items():
        if sop_class.startswith(prefix):
            return f"This DICOM file is {what}, not an image."
    return None


def _header_cut_short(ds: Dataset, end: int, size: int) -> bool:
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


def _human_bytes(n: int) -> str:
    return f"{n / (1 << 30):.1f} GB" if n >= 1 << 30 else f"{n / (1 << 20):.0f} MB"


def _scan_file_meta(f: Any, start: int) -> tuple[int, str | None]:
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
        if vr in _LONG_VRS:
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


class _CappedInflater:
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


def _deflated_header(
    f: Any, path: Path, preamble: bytes | None, meta_start: int, meta_end: int
) -> tuple[FileDataset, int, int | None, _CappedInflater]:
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
    inflater = _CappedInflater(f)
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
                    f"The deflated DICOM header inflates to more than {_human_bytes(MAX_DEFLATED_HEADER_BYTES)}; "
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
            f"A single frame of this image would decode to {_human_bytes(frame_bytes)}, more than the "
            f"{_human_bytes(MAX_FRAME_BYTES)} this viewer opens.",
            path,
        )
    if frame_bytes * nframes > MAX_DECODED_BYTES:
        raise AbsurdDimensionsError(
            f"The {nframes} frames of {cols}x{rows} pixels would decode to {_human_bytes(frame_bytes * nframes)}, "
            f"more than the {_human_bytes(MAX_DECODED_BYTES)} this viewer opens.",
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
        meta_end, syntax = _scan_file_meta(f, meta_start)
        if syntax == DeflatedExplicitVRLittleEndian:
            return _deflated_header(f, p, head if has_preamble else None, meta_start, meta_end)[0]
        f.seek(0)
        return pydicom.dcmread(f, stop_before_pixels=True, force=not has_preamble, specific_tags=specific_tags)


class DicomFrameSource:
    """Frames of one DICOM file. Build with `open_dicom_file`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: Any = None
        self._buf: Any = None  # mmap of the file, or bytes for deflated files
        self._native: tuple[int, int] | None = None  # (offset, length) of native pixel data
        self._native_frame_bytes = 0
        self._frames: list[list[encapsulated.Fragment]] = []
        self._palette: np.ndarray | None = None
        self._gray: GrayMapper | None = None
        self.header: Dataset | None = None
        self._pixel_vr: str | None = None
        self.meta: CineMeta

    # ----- opening -------------------------------------------------------
    def _open(self) -> None:
        path = self.path
        try:
            size = path.stat().st_size
            f = open(path, "rb")
        except FileNotFoundError:
            raise SourceNotFoundError("The file does not exist.", path) from None
        except IsADirectoryError:
            raise UnsupportedFileError("This is a folder, not a file.", path) from None
        except OSError as exc:
            raise SourceNotFoundError(f"The file cannot be read ({exc.strerror or exc}).", path) from None
        self._file = f
        if size == 0:
            raise EmptyFileError("The file is empty.", path)
        head = f.read(132)
        f.seek(0)
        if not looks_like_dicom(head):
            raise NotDicomError("This is not a DICOM file or a supported image.", path)
        has_preamble = head[128:132] == b"DICM"
        meta_end, syntax = _scan_file_meta(f, 132 if has_preamble else 0)
        f.seek(0)
        if syntax == DeflatedExplicitVRLittleEndian:
            ds, pixel_pos = self._open_deflated(f, head if has_preamble else None, 132 if has_preamble else 0, meta_end)
            size = len(self._buf)
        else:
            try:
                ds = pydicom.dcmread(f, stop_before_pixels=True, force=not has_preamble)
            except InvalidDicomError:
                raise NotDicomError("This is not a DICOM file or a supported image.", path) from None
            except Exception as exc:
                log.debug("header read failed: %s", type(exc).__name__)
                raise CorruptFileError("The DICOM header is damaged or the file is truncated.", path) from None
            pixel_pos = f.tell()
        # before any value is read: reading converts the raw elements this looks at
        cut_short = _header_cut_short(ds, pixel_pos, size)
        self.header = ds

        tsyntax = self._transfer_syntax(ds)
        if not tsyntax.is_transfer_syntax:
            raise UnsupportedTransferSyntaxError(
                f"The file uses an unknown encoding (transfer syntax {tsyntax}) that this viewer cannot read.", path
            )
        self._buf, pixel_offset, pixel_length, tag = self._locate_pixel_data(ds, tsyntax, f, pixel_pos, size)
        if tag is None:
            sop_class = str(ds.get("SOPClassUID", "") or ds.file_meta.get("MediaStorageSOPClassUID", "") or "")
            non_image = _message_for_non_image(sop_class)
            if non_image:
                raise NotAnImageError(non_image, path)
            if cut_short:
                # pydicom stops quietly at EOF, so a file cut inside the header reads as one without pixel data
                raise CorruptFileError("The file is truncated or damaged: its image description is missing.", path)
            if "Rows" in ds or not sop_class or sop_class.startswith(_STORAGE_PREFIX):
                raise NoPixelDataError("The DICOM file has no image data (it holds no Pixel Data element).", path)
            raise NotAnImageError("This DICOM file holds no image (it has no pixel data).", path)
        if tag in FLOAT_PIXEL_TAGS:
            raise UnsupportedFileError("The image uses floating-point pixel data, which this viewer does not display.", path)

        rows, cols, samples, nframes = self._check_dimensions(ds)
        decoder = self._decoder(tsyntax)
        opts = as_pixel_options(ds)
        opts["number_of_frames"] = nframes
        opts["transfer_syntax_uid"] = tsyntax
        opts["pixel_keyword"] = "PixelData"
        opts["pixel_vr"] = self._pixel_vr or ("OW" if int(ds.BitsAllocated) > 8 else "OB")
        self._opts = opts
        self._decoder_obj = decoder

        if tsyntax.is_encapsulated:
            if pixel_length != 0xFFFFFFFF:
                raise CorruptPixelDataError("The compressed pixel data is not stored the way DICOM requires.", path)
            self._index_fragments(ds, pixel_offset, size, nframes)
        else:
            self._check_native_length(ds, pixel_offset, pixel_length, nframes, size)

        photometric = str(ds.get("PhotometricInterpretation", "") or "").strip().upper()
        if photometric == "PALETTE COLOR":
            self._palette = self._palette_table(ds)
            channels = 3
        elif samples == 3:
            channels = 3
        else:
            channels = 1
            self._gray = gray_mapper_from_dataset(ds, reference=lambda: self._raw(0))

        self.meta = self._build_meta(ds, tsyntax, rows, cols, channels, nframes, photometric)

    @staticmethod
    def _transfer_syntax(ds: Dataset) -> UID:
        uid = ds.file_meta.get("TransferSyntaxUID", None) if hasattr(ds, "file_meta") else None
        if uid:
            return UID(str(uid).strip().rstrip("\x00"))
        # preamble-less file without meta: pydicom guessed the encoding
        return ImplicitVRLittleEndian if getattr(ds, "original_encoding", (False,))[0] else ExplicitVRLittleEndian

    def _open_deflated(self, f: Any, preamble: bytes | None, meta_start: int, meta_end: int) -> tuple[Dataset, int]:
        """Header and pixel position of a deflated file, its dataset inflated into ``self._buf`` under caps.

        The header's dimensions are checked before the pixels are inflated, and
        those stop at the length the header describes.
        """
        path = self.path
        ds, pixel_pos, tag, inflater = _deflated_header(f, path, preamble, meta_start, meta_end)
        self._buf = inflater.out
        if tag == PIXEL_DATA:
            self._check_dimensions(ds)
            try:
                expected = int(get_expected_length(ds, unit="bytes"))
            except Exception:
                raise AbsurdDimensionsError("The image dimensions in the header are inconsistent.", path) from None
            if expected > MAX_INFLATED_BYTES:
                raise AbsurdDimensionsError(
                    f"This deflated DICOM file would inflate to {_human_bytes(expected)}, more than the "
                    f"{_human_bytes(MAX_INFLATED_BYTES)} a deflated file may hold; the file was not opened.",
                    path,
                )
            cap = pixel_pos + 12 + expected + _INFLATE_SLACK
        else:
            cap = pixel_pos + 12  # no pixels to inflate: only the element header, to name what is there
        try:
            inflater.fill(cap + 1)
        except zlib.error:
            raise CorruptFileError("The compressed (deflated) DICOM file is damaged or truncated.", path) from None
        if len(inflater.out) > cap and tag == PIXEL_DATA:
            raise CorruptPixelDataError(
                f"The deflated DICOM file inflates to more than its header describes ({_human_bytes(cap)}); "
                "the file was not opened.",
                path,
            )
        return ds, pixel_pos

    def _locate_pixel_data(self, ds: Dataset, tsyntax: UID, f: Any, pos: int, size: int) -> tuple[Any, int, int, int | None]:
        """(buffer, value offset, value length, tag) of the pixel data element; tag None when absent."""
        little = tsyntax.is_little_endian
        implicit = tsyntax.is_implicit_VR
        inflated = self._buf if tsyntax == DeflatedExplicitVRLittleEndian else None
        if inflated is not None:
            head = bytes(inflated[pos : pos + 12])
        else:
            f.seek(pos)
            head = f.read(12)
        if len(head) < 8:
            return None, 0, 0, None
        group, element = struct.unpack_from("<HH" if little else ">HH", head, 0)
        tag = (group << 16) | element
        if tag not in (PIXEL_DATA, *FLOAT_PIXEL_TAGS):
            return None, 0, 0, None
        endian = "<" if little else ">"
        if implicit:
            (length,) = struct.unpack_from(endian + "I", head, 4)
            offset = pos + 8
        elif head[4:6] in _LONG_VRS:
            self._pixel_vr = head[4:6].decode("ascii")
            if len(head) < 12:
                raise CorruptPixelDataError("The file is truncated: its pixel data is missing.", self.path)
            (length,) = struct.unpack_from(endian + "I", head, 8)
            offset = pos + 12
        else:
            (length,) = struct.unpack_from(endian + "H", head, 6)
            offset = pos + 8
        if inflated is not None:
            return inflated, offset, length, tag
        try:
            buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            f.seek(0)
            buf = f.read()
        return buf, offset, length, tag

    def _check_dimensions(self, ds: Dataset) -> tuple[int, int, int, int]:
        return check_dimensions(ds, self.path)

    def _decoder(self, tsyntax: UID) -> Any:
        try:
            decoder = get_decoder(tsyntax)
        except NotImplementedError:
            name = tsyntax.name if tsyntax.is_valid and tsyntax.name != str(tsyntax) else str(tsyntax)
            raise UnsupportedTransferSyntaxError(
                f"The image is stored with a compression this viewer does not know (transfer syntax {name}).", self.path
            ) from None
        if not decoder.is_available:
            package = _CODEC_PACKAGES.get(str(tsyntax), "pylibjpeg")
            raise MissingCodecError(
                f"Opening this {CODEC_NAMES.get(str(tsyntax), tsyntax.name)} image needs the Python package "
                f"'{package}'; install it with: pip install {package}",
                self.path,
                package=package,
            )
        return decoder

    def _index_fragments(self, ds: Dataset, offset: int, size: int, nframes: int) -> None:
        extended = None
        if "ExtendedOffsetTable" in ds and "ExtendedOffsetTableLengths" in ds:
            try:
                offs = np.frombuffer(ds.ExtendedOffsetTable, dtype="<u8").tolist()
                lens = np.frombuffer(ds.ExtendedOffsetTableLengths, dtype="<u8").tolist()
                extended = (offs, lens)
            except (ValueError, TypeError):
                extended = None
        try:
            bot, fragments = encapsulated.read_items(self._buf, offset, size)
            self._frames = encapsulated.frame_fragments(self._buf, bot, fragments, nframes, extended)
        except encapsulated.EncapsulationError as exc:
            truncated = "past the end" in str(exc) or "ends before" in str(exc)
            if truncated:
                raise CorruptPixelDataError("The file is truncated: its pixel data ends early.", self.path) from None
            if "holds only" in str(exc):
                raise CorruptPixelDataError(
                    f"The file says it has {nframes} frames but its pixel data holds fewer.", self.path
                ) from None
            raise CorruptPixelDataError("The compressed pixel data is damaged.", self.path) from None

    def _check_native_length(self, ds: Dataset, offset: int, length: int, nframes: int, size: int) -> None:
        try:
            expected = int(get_expected_length(ds, unit="bytes"))
        except Exception:
            raise AbsurdDimensionsError("The image dimensions in the header are inconsistent.", self.path) from None
        available = min(length, len(self._buf) - offset) if length != 0xFFFFFFFF else len(self._buf) - offset
        if length == 0xFFFFFFFF:
            raise CorruptPixelDataError("The pixel data is marked compressed but the file says it is not.", self.path)
        if available < expected:
            if length >= expected:
                raise CorruptPixelDataError("The file is truncated: its pixel data ends early.", self.path)
            raise CorruptPixelDataError(
                f"The file says it has {nframes} frame{'s' if nframes != 1 else ''} but its pixel data holds fewer.", self.path
            )
        self._native = (offset, length)
        bits_alloc = int(ds.BitsAllocated)
        self._native_frame_bytes = expected // nframes if bits_alloc % 8 == 0 else 0

    def _palette_table(self, ds: Dataset) -> np.ndarray:
        bits = int(ds.get("BitsStored", 8) or 8)
        try:
            values = np.arange(2 ** min(bits, 16), dtype=np.uint16 if bits > 8 else np.uint8)
            table = apply_color_lut(values, ds)
        except Exception:
            raise CorruptFileError("The colour palette in this file is missing or damaged.", self.path) from None
        return reduce_16bit_palette(np.asarray(table)[:, :3])

    def _build_meta(self, ds: Dataset, tsyntax: UID, rows: int, cols: int, channels: int, nframes: int, photometric: str) -> CineMeta:
        fps, fps_source = read_frame_rate(ds)
        cal = read_calibration(ds, rows, cols)

        def text(keyword: str) -> str:
            value = ds.get(keyword, None)
            return "" if value is None else str(value).strip()

        burned = text("BurnedInAnnotation").upper() or None
        return CineMeta(
            source_path=str(self.path),
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

    # ----- decoding ------------------------------------------------------
    def _raw(self, index: int) -> np.ndarray:
        """Frame `index` as pydicom decodes it (YBR converted to RGB), before display mapping."""
        opts = self._opts
        try:
            if self._native is not None:
                offset, length = self._native
                fb = self._native_frame_bytes
                if fb:
                    src = self._buf[offset + index * fb : offset + (index + 1) * fb]
                    arr, props = self._decoder_obj.as_array(src, index=0, **{**opts, "number_of_frames": 1})
                else:
                    src = self._buf[offset : offset + length]
                    arr, props = self._decoder_obj.as_array(src, index=index, **opts)
            else:
                data = encapsulated.frame_bytes(self._buf, self._frames[index])
                arr, props = self._decoder_obj.as_array(encapsulate([data]), index=0, **{**opts, "number_of_frames": 1})
        except LoadError:
            raise
        except Exception as exc:
            if self._buf is None:
                raise ValueError("the file was closed while a frame was being decoded") from None
            log.debug("frame %d decode failed: %s", index, type(exc).__name__)
            raise CorruptPixelDataError(f"Frame {index + 1} could not be decoded: the pixel data is damaged.", self.path) from None
        return arr

    def decode(self, index: int) -> np.ndarray:
        if self._buf is None:
            raise ValueError("the file is closed")
        arr = self._raw(index)
        if self._palette is not None:
            out = np.take(self._palette, arr, axis=0, mode="clip")
        elif arr.ndim == 3:
            out = rescale_color_to_uint8(arr, self.meta.bits_stored)
        else:
            assert self._gray is not None
            out = self._gray.to_uint8(arr)
        expected = (self.meta.rows, self.meta.cols) if self.meta.channels == 1 else (self.meta.rows, self.meta.cols, 3)
        if out.shape != expected:
            raise CorruptPixelDataError(f"Frame {index + 1} has an unexpected size {out.shape}.", self.path)
        # mmap slices are bytes copies, so `out` never aliases the file
        return np.ascontiguousarray(out, dtype=np.uint8)

    def close(self) -> None:
        buf, self._buf = self._buf, None
        if isinstance(buf, mmap.mmap):
            try:
                buf.close()
            except BufferError:
                pass  # a view is still alive somewhere; the mmap closes when it is collected
        if self._file is not None:
            self._file.close()
            self._file = None


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def open_dicom_file(path: str | os.PathLike) -> DicomFrameSource:
    """Open one DICOM file; raises a `LoadError` subclass when it cannot be shown."""
    source = DicomFrameSource(Path(path))
    try:
        source._open()
    except BaseException:
        source.close()
        raise
    return source
