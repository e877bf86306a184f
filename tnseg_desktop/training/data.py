"""Image/mask folders in the DESIGN.md layout: DIR/images/<id>.png, DIR/masks/<id>.png (0/255)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from tnseg_desktop.errors import UserFacingError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


@dataclass
class Sample:
    id: str
    image: np.ndarray  # uint8 HxW grayscale
    mask: np.ndarray  # bool HxW


def read_gray(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise UserFacingError("cannot read this image file.", str(path))
    if img.dtype != np.uint8:
        img = cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    if img.ndim == 3:
        img = cv2.cvtColor(img[:, :, :3], cv2.COLOR_BGR2GRAY)
    return img


def list_pairs(folder: str | Path) -> list[tuple[str, Path, Path | None]]:
    root = Path(folder)
    images = root / "images"
    if not images.is_dir():
        raise UserFacingError("not a data folder: it needs an images/ subfolder (and masks/ for training or evaluation).", str(root))
    masks = root / "masks"
    out = []
    for p in sorted(images.iterdir()):
        if p.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        m = None
        for suffix in (".png", p.suffix):
            candidate = masks / (p.stem + suffix)
            if candidate.is_file():
                m = candidate
                break
        out.append((p.stem, p, m))
    if not out:
        raise UserFacingError("the images/ folder holds no images.", str(images))
    return out


def load_folder(folder: str | Path, require_masks: bool = True) -> list[Sample]:
    samples = []
    for sid, ip, mp in list_pairs(folder):
        if mp is None:
            if require_masks:
                raise UserFacingError(f"image {ip.name} has no mask in masks/.", str(folder))
            continue
        img = read_gray(ip)
        mask = read_gray(mp) > 127
        if mask.shape != img.shape:
            raise UserFacingError(f"mask {mp.name} is {mask.shape[1]}x{mask.shape[0]} but its image is {img.shape[1]}x{img.shape[0]}.", str(folder))
        samples.append(Sample(sid, img, mask))
    return samples
