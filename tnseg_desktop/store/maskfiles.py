"""Mask pixels on disk: PNG files (0/255, frame resolution) written atomically.

Files are content-addressed (``masks/ab/<sha256>.png``) so a file, once named
in the database, never changes: a crash can leave an unreferenced file behind
but never a referenced file half-written or replaced under a committed row.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np

from tnseg_desktop.atomic_write import atomic_write_bytes
from tnseg_desktop.io.export_png import mask_png_bytes
from tnseg_desktop.store.errors import StoreCorruptError, StoreError


def as_binary_mask(mask: np.ndarray) -> np.ndarray:
    """A 2-D bool array from a bool/uint8/int mask (nonzero is nodule)."""
    arr = np.asarray(mask)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim != 2 or arr.size == 0:
        raise StoreError(f"A mask must be a 2-D array at frame resolution, got shape {arr.shape}.")
    return arr != 0


def encode_png(mask: np.ndarray) -> bytes:
    return mask_png_bytes(as_binary_mask(mask))


def decode_png(data: bytes, path: str = "") -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None or img.ndim != 2:
        raise StoreCorruptError("The mask file is not a readable single-channel PNG.", path)
    return img != 0


class MaskFiles:
    """The content-addressed folder of mask PNGs next to the database."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def put(self, mask: np.ndarray) -> tuple[str, str, int]:
        """Store a mask; returns (path relative to the store, sha256 of the PNG, nodule area in pixels)."""
        binary = as_binary_mask(mask)
        data = encode_png(binary)
        sha = hashlib.sha256(data).hexdigest()
        rel = f"masks/{sha[:2]}/{sha}.png"
        target = self.root / rel
        if target.is_file() and _file_sha256(target) == sha:
            try:  # reused: fresh again, so the start-up cleanup never takes it before this row commits
                target.touch()
            except OSError:
                pass
        else:
            atomic_write_bytes(target, data)
        return rel, sha, int(binary.sum())

    def get(self, rel: str, sha256: str | None = None) -> np.ndarray:
        path = self.root / rel
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise StoreCorruptError("A mask file the store refers to is missing.", str(path)) from None
        if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
            raise StoreCorruptError("A mask file does not match the checksum the store recorded.", str(path))
        return decode_png(data, str(path))

    def unreferenced(self, referenced: set[str]) -> list[Path]:
        """Mask files (and stale temporary files) no row refers to."""
        out = []
        masks = self.root / "masks"
        if masks.is_dir():
            for p in masks.rglob("*"):
                if p.is_file() and p.relative_to(self.root).as_posix() not in referenced:
                    out.append(p)
        return out


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
