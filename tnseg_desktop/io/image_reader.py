"""Plain images (PNG, JPEG, BMP, TIFF), alone or as a folder of frames, via OpenCV."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from tnseg_desktop.io.errors import CorruptFileError, EmptyFileError, SourceNotFoundError, UnsupportedFileError
from tnseg_desktop.io.frame_rate import DEFAULT_FPS
from tnseg_desktop.io.types import CineMeta

def _quiet_opencv() -> None:
    """OpenCV prints decoder warnings (e.g. truncated PNG) straight to stderr; the
    loader reports those as typed errors instead, so only errors may print."""
    log_api = getattr(getattr(cv2, "utils", None), "logging", None)
    if log_api is not None and log_api.getLogLevel() > log_api.LOG_LEVEL_ERROR:
        log_api.setLogLevel(log_api.LOG_LEVEL_ERROR)


_quiet_opencv()

IMAGE_SUFFIXES = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF"}

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)


def sniff_image(head: bytes) -> str | None:
    """Format name when the first bytes are those of a supported image."""
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return None


def image_to_uint8(img: np.ndarray) -> np.ndarray:
    """OpenCV's decode (BGR order, any depth) -> uint8 grayscale or RGB.

    16-bit and float images are stretched min..max; alpha is dropped.
    """
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.dtype != np.uint8:
        values = img.astype(np.float64)
        lo, hi = float(values.min()), float(values.max())
        img = np.zeros(img.shape, np.uint8) if hi <= lo else np.rint((values - lo) * (255.0 / (hi - lo))).astype(np.uint8)
    if img.ndim == 3:
        if img.shape[2] == 4:
            img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
        elif img.shape[2] == 3:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        else:
            raise ValueError(f"unsupported channel count {img.shape[2]}")
    return np.ascontiguousarray(img)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """One image file as uint8 HxW or HxWx3 RGB; LoadError subclasses on failure."""
    p = Path(path)
    try:
        data = np.fromfile(p, dtype=np.uint8)  # not cv2.imread: it cannot open non-ASCII paths on Windows
    except FileNotFoundError:
        raise SourceNotFoundError("The file does not exist.", p) from None
    except OSError as exc:
        raise SourceNotFoundError(f"The file cannot be read ({exc.strerror or exc}).", p) from None
    if data.size == 0:
        raise EmptyFileError("The file is empty.", p)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise CorruptFileError("The image file is damaged or truncated and cannot be decoded.", p)
    try:
        return image_to_uint8(img)
    except ValueError:
        raise UnsupportedFileError("The image has a colour layout this viewer does not support.", p) from None


class ImageFrameSource:
    """One image, or a folder of images in name order, as frames."""

    def __init__(self, files: Sequence[Path], source_path: Path, fmt: str) -> None:
        if not files:
            raise UnsupportedFileError("There are no images to open.", source_path)
        self.files = list(files)
        first = read_image(self.files[0])
        self._first: np.ndarray | None = first
        rows, cols = first.shape[:2]
        self.meta = CineMeta(
            source_path=str(source_path),
            frames=len(self.files),
            rows=rows,
            cols=cols,
            channels=1 if first.ndim == 2 else 3,
            fps=DEFAULT_FPS,
            fps_source="default",
            codec=fmt,
            photometric="MONOCHROME2" if first.ndim == 2 else "RGB",
            files=[str(f) for f in self.files] if len(self.files) > 1 else [],
        )

    def decode(self, index: int) -> np.ndarray:
        first, self._first = self._first, None
        img = first if index == 0 and first is not None else read_image(self.files[index])
        m = self.meta
        if img.shape[:2] != (m.rows, m.cols) or (img.ndim == 2) != (m.channels == 1):
            raise UnsupportedFileError(
                f"The image {self.files[index].name} has a different size or colour type from the first image.", self.files[index]
            )
        return img

    def close(self) -> None:
        self._first = None
