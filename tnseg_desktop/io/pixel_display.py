"""Turning decoded DICOM pixel values into uint8 display frames.

Rules (the tests reproduce them from pydicom's own functions):
- PALETTE COLOR: the palette is applied with pydicom's `apply_color_lut`;
  16-bit entries are reduced to 8 bits by ``round(v / 257)`` unless every
  entry already fits in 0..255 (some scanners store 8-bit values in 16-bit
  entries), in which case they are used unchanged.
- RGB (YBR already converted by the decoder) with more than 8 bits stored:
  ``round(v * 255 / (2**bits_stored - 1))``.
- Grayscale: the modality rescale, then the first VOI LUT or window
  (DICOM linear window function) when present, else the min..max of the
  reference frame (frame 0 for a cine, so that a loop does not flicker;
  Smallest/LargestImagePixelValue are ignored: real files get them wrong). 8-bit unsigned
  grayscale without a window is shown as stored. MONOCHROME1 is inverted.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np


def _as_float_list(value: Any) -> list[float]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return [float(v) for v in value]
    return [float(value)]


def reduce_16bit_palette(table: np.ndarray) -> np.ndarray:
    """(N, 3) palette values of any depth -> uint8 per the module rules."""
    if table.dtype == np.uint8:
        return table
    if int(table.max(initial=0)) <= 255:
        return table.astype(np.uint8)
    return np.rint(table.astype(np.float64) / 257.0).clip(0, 255).astype(np.uint8)


def rescale_color_to_uint8(arr: np.ndarray, bits_stored: int) -> np.ndarray:
    """Colour samples with more than 8 bits stored -> uint8."""
    if arr.dtype == np.uint8:
        return arr
    top = float(2 ** int(bits_stored) - 1)
    return np.rint(arr.astype(np.float64) * (255.0 / top)).clip(0, 255).astype(np.uint8)


def linear_window_to_uint8(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """DICOM PS3.3 C.11.2.1.2 linear window function onto 0..255."""
    width = max(float(width), 1.0)
    if width == 1.0:
        out = np.where(values <= center - 0.5, 0.0, 255.0)
    else:
        out = ((values - (center - 0.5)) / (width - 1.0) + 0.5) * 255.0
    return np.rint(np.clip(out, 0.0, 255.0)).astype(np.uint8)


def range_to_uint8(values: np.ndarray, low: float, high: float) -> np.ndarray:
    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    out = (values - low) * (255.0 / (high - low))
    return np.rint(np.clip(out, 0.0, 255.0)).astype(np.uint8)


@dataclass
class VoiLut:
    first_mapped: int
    data: np.ndarray  # float64 output values
    bits: int

    def to_uint8(self, values: np.ndarray) -> np.ndarray:
        idx = np.clip(np.rint(values).astype(np.int64) - self.first_mapped, 0, len(self.data) - 1)
        return range_to_uint8(self.data[idx], 0.0, float(2**self.bits - 1))


class GrayMapper:
    """Maps decoded grayscale values to uint8 for one image or cine.

    `reference` is called at most once (under a lock) to get the raw frame
    whose min..max sets the range when the file gives no window.
    """

    def __init__(
        self,
        *,
        bits_stored: int,
        signed: bool,
        monochrome1: bool,
        slope: float = 1.0,
        intercept: float = 0.0,
        window: tuple[float, float] | None = None,
        voi_lut: VoiLut | None = None,
        value_range: tuple[float, float] | None = None,
        reference: Callable[[], np.ndarray] | None = None,
    ) -> None:
        self.bits_stored = bits_stored
        self.signed = signed
        self.monochrome1 = monochrome1
        self.slope = slope
        self.intercept = intercept
        self.window = window
        self.voi_lut = voi_lut
        self.value_range = value_range
        self._reference = reference
        self._lock = threading.Lock()

    def _modality(self, arr: np.ndarray) -> np.ndarray:
        values = arr.astype(np.float64)
        if self.slope != 1.0 or self.intercept != 0.0:
            values = values * self.slope + self.intercept
        return values

    def _range(self, values: np.ndarray) -> tuple[float, float]:
        with self._lock:
            if self.value_range is None:
                ref = self._reference() if self._reference is not None else None
                src = values if ref is None else self._modality(ref)
                self.value_range = (float(src.min()), float(src.max()))
            return self.value_range

    def to_uint8(self, arr: np.ndarray) -> np.ndarray:
        plain_8bit = (
            arr.dtype == np.uint8
            and self.window is None
            and self.voi_lut is None
            and self.slope == 1.0
            and self.intercept == 0.0
        )
        if plain_8bit:
            out = arr
        else:
            values = self._modality(arr)
            if self.voi_lut is not None:
                out = self.voi_lut.to_uint8(values)
            elif self.window is not None:
                out = linear_window_to_uint8(values, *self.window)
            else:
                out = range_to_uint8(values, *self._range(values))
        if self.monochrome1:
            out = 255 - out
        return np.ascontiguousarray(out, dtype=np.uint8)


def gray_mapper_from_dataset(ds: Any, reference: Callable[[], np.ndarray] | None) -> GrayMapper:
    """Read rescale/window/VOI LUT settings from a pydicom dataset header."""
    bits_stored = int(ds.get("BitsStored", 8) or 8)
    signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
    mono1 = str(ds.get("PhotometricInterpretation", "")).strip() == "MONOCHROME1"
    slope = _first(ds.get("RescaleSlope"), 1.0)
    intercept = _first(ds.get("RescaleIntercept"), 0.0)
    if slope == 0.0:
        slope = 1.0

    voi_lut = None
    seq = ds.get("VOILUTSequence")
    if seq:
        item = seq[0]
        desc = item.get("LUTDescriptor")
        raw = item.get("LUTData")
        if desc is not None and raw is not None and len(desc) == 3:
            n = int(desc[0]) or 65536
            bits = int(desc[2])
            data = _lut_values(raw, bits)[:n]
            if len(data):
                voi_lut = VoiLut(int(desc[1]), data.astype(np.float64), bits)

    window = None
    centers = _as_float_list(ds.get("WindowCenter"))
    widths = _as_float_list(ds.get("WindowWidth"))
    if voi_lut is None and centers and widths and widths[0] > 0:
        window = (centers[0], widths[0])

    return GrayMapper(
        bits_stored=bits_stored,
        signed=signed,
        monochrome1=mono1,
        slope=slope,
        intercept=intercept,
        window=window,
        voi_lut=voi_lut,
        reference=reference,
    )


def _first(value: Any, default: float) -> float:
    values = _as_float_list(value)
    return values[0] if values else default


def _lut_values(raw: Any, bits: int) -> np.ndarray:
    if isinstance(raw, (bytes, bytearray)):
        return np.frombuffer(raw, dtype="<u2" if bits > 8 else np.uint8)
    return np.asarray(list(raw) if not isinstance(raw, int) else [raw])
