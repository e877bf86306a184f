"""pydicom's own decode, converted to display uint8 by the rules in tnseg_desktop/io/pixel_display.py.

Written independently of the loader (only pydicom + numpy) so the comparison can fail.
"""

from __future__ import annotations

import numpy as np
import pydicom
from pydicom.pixels import apply_color_lut, apply_modality_lut, convert_color_space, pixel_array


def _frames_first(arr: np.ndarray, ds: pydicom.Dataset) -> np.ndarray:
    n = int(ds.get("NumberOfFrames", 1) or 1)
    return arr if n > 1 else arr[None]


def _gray_to_uint8(frames: np.ndarray, ds: pydicom.Dataset) -> np.ndarray:
    values = apply_modality_lut(frames, ds).astype(np.float64)
    if frames.dtype == np.uint8 and "WindowCenter" not in ds and "RescaleSlope" not in ds:
        out = frames
    elif "WindowCenter" in ds and "WindowWidth" in ds:
        c = ds.WindowCenter[0] if ds["WindowCenter"].VM > 1 else ds.WindowCenter
        w = ds.WindowWidth[0] if ds["WindowWidth"].VM > 1 else ds.WindowWidth
        c, w = float(c), max(float(w), 1.0)
        out = np.rint(np.clip(((values - (c - 0.5)) / (w - 1) + 0.5) * 255, 0, 255)).astype(np.uint8)
    else:
        lo, hi = float(values[0].min()), float(values[0].max())  # frame 0 sets the range of a cine
        out = np.rint(np.clip((values - lo) * 255 / (hi - lo), 0, 255)).astype(np.uint8)
    if ds.PhotometricInterpretation == "MONOCHROME1":
        out = 255 - out
    return out


def reference_frames(path, per_frame: bool = False) -> np.ndarray:
    """(frames, rows, cols[, 3]) uint8, as the loader should return them.

    per_frame: decode with pydicom's pixel_array(ds, index=i) frame by frame
    (same pixels as ds.pixel_array, about 2x faster for long JPEG loops).
    """
    ds = pydicom.dcmread(path)
    pi = ds.PhotometricInterpretation
    if per_frame and pi in ("RGB", "YBR_FULL", "YBR_FULL_422") and ds.file_meta.TransferSyntaxUID.is_compressed:
        n = int(ds.get("NumberOfFrames", 1) or 1)
        return np.stack([pixel_array(ds, index=i) for i in range(n)])
    if pi == "YBR_FULL_422" and not ds.file_meta.TransferSyntaxUID.is_compressed:
        # native subsampled YBR: undo the subsampling only, then convert with pydicom's colour function
        raw = _frames_first(pixel_array(ds, raw=True), ds)
        return convert_color_space(raw, "YBR_FULL", "RGB")
    arr = _frames_first(ds.pixel_array, ds)
    if pi == "PALETTE COLOR":
        rgb = apply_color_lut(arr, ds)
        if rgb.dtype != np.uint8:
            rgb = rgb.astype(np.uint8) if rgb.max() <= 255 else np.rint(rgb / 257.0).astype(np.uint8)
        return rgb
    if arr.ndim == 4:
        if arr.dtype != np.uint8:
            top = 2 ** int(ds.BitsStored) - 1
            arr = np.rint(arr.astype(np.float64) * 255 / top).astype(np.uint8)
        return arr
    return _gray_to_uint8(arr, ds)
