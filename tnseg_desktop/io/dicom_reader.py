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
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.errors import InvalidDicomError
from pydicom.pixels import get_decoder
from pydicom.pixels.processing import apply_color_lut
from pydicom.pixels.utils import as_pixel_options, get_expected_length
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from tnseg_desktop.io import encapsulated
# check_dimensions, looks_like_dicom and read_header are also imported from here by series.py and source.py
from tnseg_desktop.io.dicom_header import (
    CODEC_NAMES,
    FLOAT_PIXEL_TAGS,
    INFLATE_SLACK,
    LONG_VRS,
    MAX_INFLATED_BYTES,
    PIXEL_DATA,
    STORAGE_PREFIX,
    check_dimensions,
    cine_meta,
    deflated_header,
    header_cut_short,
    human_bytes,
    looks_like_dicom,
    message_for_non_image,
    read_header,
    scan_file_meta,
)
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
from tnseg_desktop.io.pixel_display import GrayMapper, gray_mapper_from_dataset, reduce_16bit_palette, rescale_color_to_uint8
from tnseg_desktop.io.types import CineMeta

log = logging.getLogger(__name__)


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
        meta_end, syntax = scan_file_meta(f, 132 if has_preamble else 0)
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
        cut_short = header_cut_short(ds, pixel_pos, size)
        self.header = ds

        tsyntax = self._transfer_syntax(ds)
        if not tsyntax.is_transfer_syntax:
            raise UnsupportedTransferSyntaxError(
                f"The file uses an unknown encoding (transfer syntax {tsyntax}) that this viewer cannot read.", path
            )
        self._buf, pixel_offset, pixel_length, tag = self._locate_pixel_data(ds, tsyntax, f, pixel_pos, size)
        if tag is None:
            sop_class = str(ds.get("SOPClassUID", "") or ds.file_meta.get("MediaStorageSOPClassUID", "") or "")
            non_image = message_for_non_image(sop_class)
            if non_image:
                raise NotAnImageError(non_image, path)
            if cut_short:
                # pydicom stops quietly at EOF, so a file cut inside the header reads as one without pixel data
                raise CorruptFileError("The file is truncated or damaged: its image description is missing.", path)
            if "Rows" in ds or not sop_class or sop_class.startswith(STORAGE_PREFIX):
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

        self.meta = cine_meta(ds, path, tsyntax, rows, cols, channels, nframes, photometric)

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
        ds, pixel_pos, tag, inflater = deflated_header(f, path, preamble, meta_start, meta_end)
        self._buf = inflater.out
        if tag == PIXEL_DATA:
            self._check_dimensions(ds)
            try:
                expected = int(get_expected_length(ds, unit="bytes"))
            except Exception:
                raise AbsurdDimensionsError("The image dimensions in the header are inconsistent.", path) from None
            if expected > MAX_INFLATED_BYTES:
                raise AbsurdDimensionsError(
                    f"This deflated DICOM file would inflate to {human_bytes(expected)}, more than the "
                    f"{human_bytes(MAX_INFLATED_BYTES)} a deflated file may hold; the file was not opened.",
                    path,
                )
            cap = pixel_pos + 12 + expected + INFLATE_SLACK
        else:
            cap = pixel_pos + 12  # no pixels to inflate: only the element header, to name what is there
        try:
            inflater.fill(cap + 1)
        except zlib.error:
            raise CorruptFileError("The compressed (deflated) DICOM file is damaged or truncated.", path) from None
        if len(inflater.out) > cap and tag == PIXEL_DATA:
            raise CorruptPixelDataError(
                f"The deflated DICOM file inflates to more than its header describes ({human_bytes(cap)}); "
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
        elif head[4:6] in LONG_VRS:
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


def open_dicom_file(path: str | os.PathLike) -> DicomFrameSource:
    """Open one DICOM file; raises a `LoadError` subclass when it cannot be shown."""
    source = DicomFrameSource(Path(path))
    try:
        source._open()
    except BaseException:
        source.close()
        raise
    return source
