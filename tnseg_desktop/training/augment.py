"""Augmentation for ultrasound frames, done in numpy/OpenCV straight to the training size.

One affine warp does flip, scale, crop, shift and a small rotation; then
gamma, contrast, multiplicative speckle noise and blur act on intensities.
No vertical flip: depth runs down the image in ultrasound.
"""

from __future__ import annotations

import math

import cv2
import numpy as np


def random_affine(h: int, w: int, size: int, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """2x3 matrix mapping source pixels into a size x size training view."""
    sx, sy = size / w, size / h
    zoom = 1.0
    if rng.random() < 0.7 * strength:
        zoom = float(rng.uniform(1.0, 1.0 + 0.6 * strength))
    else:
        zoom = float(rng.uniform(0.85, 1.0))
    aspect = float(math.exp(rng.uniform(-0.15, 0.15) * strength))
    angle = float(rng.uniform(-12, 12) * strength) if rng.random() < 0.5 else 0.0
    flip = rng.random() < 0.5
    # centre of the view in source pixels, jittered within what the zoom allows
    max_dx = 0.5 * w * max(0.0, 1 - 1 / zoom) + 0.05 * w
    max_dy = 0.5 * h * max(0.0, 1 - 1 / zoom) + 0.05 * h
    cx = w / 2 + rng.uniform(-max_dx, max_dx)
    cy = h / 2 + rng.uniform(-max_dy, max_dy)
    a = math.radians(angle)
    kx, ky = sx * zoom * aspect, sy * zoom / aspect
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    lin = rot @ np.diag([kx, ky])
    if flip:
        lin = np.diag([-1.0, 1.0]) @ lin
    t = np.array([size / 2, size / 2]) - lin @ np.array([cx, cy])
    return np.hstack([lin, t[:, None]]).astype(np.float32)


def resize_pair(image: np.ndarray, mask: np.ndarray | None, size: int) -> tuple[np.ndarray, np.ndarray | None]:
    img = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    m = None if mask is None else cv2.resize(mask.astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST) > 0
    return img, m


def intensity(img: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """uint8 -> float32 [0, 1] with gamma, contrast/brightness, speckle and blur."""
    x = img.astype(np.float32) / 255.0
    if rng.random() < 0.8 * strength:
        x = np.power(x, float(math.exp(rng.uniform(-0.35, 0.35) * strength)))
    if rng.random() < 0.8 * strength:
        c = float(rng.uniform(1 - 0.25 * strength, 1 + 0.25 * strength))
        b = float(rng.uniform(-0.08, 0.08) * strength)
        x = (x - 0.5) * c + 0.5 + b
    if rng.random() < 0.4 * strength:
        sigma = float(rng.uniform(0.03, 0.15) * strength)
        x = x * (1.0 + sigma * rng.standard_normal(x.shape).astype(np.float32))
    if rng.random() < 0.3 * strength:
        x = cv2.GaussianBlur(x, (0, 0), float(rng.uniform(0.4, 1.2)))
    return np.clip(x, 0.0, 1.0)


def augment(image: np.ndarray, mask: np.ndarray, size: int, rng: np.random.Generator, strength: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 HxW, bool HxW) -> (float32 size x size in [0,1], bool size x size)."""
    h, w = image.shape
    img, msk = warp_pair(image, mask, random_affine(h, w, size, rng, strength), size)
    return intensity(img, rng, strength), msk


def object_affine(mask: np.ndarray, size: int, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray | None:
    """2x3 matrix mapping a square window around the object into a size x size view, or None without an object.

    Mirrors the refiner's zoom-in at inference (engine/lite_refiner.crop_around:
    the object's box enlarged by a margin, at least a quarter of the frame), with
    the margin, centre and angle jittered so the network does not learn that the
    object always sits exactly in the middle.
    """
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return None
    h, w = mask.shape
    r0, r1, c0, c1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    side = max(r1 - r0, c1 - c0) * (1.0 + float(rng.uniform(0.15, 0.9)))
    side = max(side, 0.25 * min(h, w), 48.0)
    cy = (r0 + r1) / 2.0 + rng.uniform(-0.15, 0.15) * side * strength
    cx = (c0 + c1) / 2.0 + rng.uniform(-0.15, 0.15) * side * strength
    angle = math.radians(float(rng.uniform(-10, 10) * strength)) if rng.random() < 0.5 else 0.0
    k = size / side
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    lin = rot * k
    if rng.random() < 0.5:
        lin = np.diag([-1.0, 1.0]) @ lin
    t = np.array([size / 2, size / 2]) - lin @ np.array([cx, cy])
    return np.hstack([lin, t[:, None]]).astype(np.float32)


def warp_pair(image: np.ndarray, mask: np.ndarray, m: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    img = cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    msk = cv2.warpAffine(mask.astype(np.uint8), m, (size, size), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0) > 0
    return img, msk


def augment_object(image: np.ndarray, mask: np.ndarray, size: int, rng: np.random.Generator, strength: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Like ``augment`` but the view is a zoomed-in window around the object (whole-frame view when there is none)."""
    m = object_affine(mask, size, rng, strength)
    if m is None:
        return augment(image, mask, size, rng, strength)
    img, msk = warp_pair(image, mask, m, size)
    return intensity(img, rng, strength), msk


def perturb_mask(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A plausible imperfect prior: the truth dilated/eroded, shifted, or with a blob added or cut."""
    m = mask.astype(np.uint8)
    h, w = m.shape
    k = max(1, int(round(min(h, w) * rng.uniform(0.01, 0.06))))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))
    choice = rng.integers(0, 4)
    if choice == 0:
        m = cv2.dilate(m, kernel)
    elif choice == 1:
        m = cv2.erode(m, kernel)
    elif choice == 2:
        dy, dx = rng.integers(-2 * k, 2 * k + 1, size=2)
        m = np.roll(m, (int(dy), int(dx)), axis=(0, 1))
    else:
        cy, cx = int(rng.integers(0, h)), int(rng.integers(0, w))
        r = int(min(h, w) * rng.uniform(0.05, 0.2))
        blob = np.zeros_like(m)
        cv2.circle(blob, (cx, cy), r, 1, -1)
        m = np.where(rng.random() < 0.5, m | blob, m & (1 - blob)).astype(np.uint8)
    return m > 0
