"""The object-centred view used to train refinement matches the refiner's zoom-in at inference."""

from __future__ import annotations

import numpy as np

from tnseg_desktop.training.augment import augment_object, object_affine


def _case(h: int = 300, w: int = 400) -> tuple[np.ndarray, np.ndarray]:
    img = np.full((h, w), 60, np.uint8)
    mask = np.zeros((h, w), bool)
    mask[120:160, 200:250] = True  # a small object: 2 % of the frame
    img[mask] = 200
    return img, mask


def test_object_fills_a_large_part_of_the_view_and_stays_inside():
    img, mask = _case()
    rng = np.random.default_rng(0)
    fractions = []
    for _ in range(40):
        x, m = augment_object(img, mask, 96, rng)
        assert x.shape == (96, 96) and m.shape == (96, 96) and x.dtype == np.float32
        assert m.any()
        fractions.append(m.mean())
    # whole-frame views keep ~2 %; the zoomed view makes the object a sizeable part of the input
    assert np.median(fractions) > 0.15
    assert mask.mean() < 0.03


def test_no_object_falls_back_to_the_whole_frame_view():
    img, _ = _case()
    empty = np.zeros(img.shape, bool)
    assert object_affine(empty, 96, np.random.default_rng(0)) is None
    x, m = augment_object(img, empty, 96, np.random.default_rng(0))
    assert x.shape == (96, 96) and not m.any()
