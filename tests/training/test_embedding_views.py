"""Cached augmented views: keyed by weights, precision, pixels and view parameters; resumable and cancellable."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from tnseg_desktop.training.embedding_views import ViewSpec, apply_view, build_views, load_view, view_specs


class CountingEncoder(nn.Module):
    """A small real conv encoder with LiteMedSAM's output shape; counts its passes."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 256, 4, stride=4)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.conv(x)


def items(n: int = 3):
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        img = rng.integers(0, 255, (90 + i, 130), dtype=np.uint8)
        m = np.zeros(img.shape, bool)
        m[30:60, 40:90] = True
        out.append((f"f{i}", img, m))
    return out


def test_views_are_made_once_and_resumed(tmp_path):
    enc = CountingEncoder()
    paths = build_views(items(), 3, tmp_path, enc, "a" * 64, "fp32")
    assert enc.calls == 9 and all(len(p) == 3 for p in paths)
    again = build_views(items(), 3, tmp_path, enc, "a" * 64, "fp32")
    assert enc.calls == 9 and again == paths
    v = load_view(paths[0][0])
    assert v.embedding.shape == (256, 64, 64) and v.embedding.dtype == np.float16
    assert v.image.shape == (256, 256) and v.mask.shape == (256, 256) and v.mask.any()
    assert v.hw == (round(90 * 256 / 130), 256)


def test_other_weights_precision_or_pixels_make_new_views(tmp_path):
    enc = CountingEncoder()
    build_views(items(1), 2, tmp_path, enc, "a" * 64, "fp32")
    build_views(items(1), 2, tmp_path, enc, "b" * 64, "fp32")
    build_views(items(1), 2, tmp_path, enc, "a" * 64, "bf16")
    sid, img, m = items(1)[0]
    img = img.copy()
    img[0, 0] ^= 1
    build_views([(sid, img, m)], 2, tmp_path, enc, "a" * 64, "fp32")
    assert enc.calls == 8


def test_cancel_stops_between_views_and_keeps_what_was_made(tmp_path):
    enc = CountingEncoder()
    stop_after = {"n": 4}
    out = build_views(items(3), 2, tmp_path, enc, "a" * 64, "fp32", cancelled=lambda: enc.calls >= stop_after["n"])
    assert enc.calls == 4 and len(out) == 2
    build_views(items(3), 2, tmp_path, enc, "a" * 64, "fp32")
    assert enc.calls == 6


def test_view_specs_are_seeded_and_the_geometry_moves_image_and_mask_together():
    a, b = view_specs("x", 5), view_specs("x", 5)
    assert a == b and a[0] == ViewSpec() and a[1] == ViewSpec(flip=True) and len(set(a)) == 5
    img = np.zeros((100, 160), np.uint8)
    img[20:50, 30:70] = 200
    mask = img > 0
    for spec in a:
        vi, vm = apply_view(img, mask, spec)
        assert vi.shape == img.shape and vm.shape == mask.shape
        if spec.seed < 0:  # geometry only: the bright square and its mask coincide
            assert np.array_equal(vi > 100, vm)
