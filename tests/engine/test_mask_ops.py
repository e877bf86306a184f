"""Mask operations on real DDTI frames and masks."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tnseg_desktop.engine import mask_ops

try:
    from .interactive_helpers import ddti_samples
except ImportError:
    from interactive_helpers import ddti_samples


@pytest.fixture(scope="module")
def sample(shared_data):
    return ddti_samples(shared_data, "val", 6)[0]


def _disc(shape, r, c, radius):
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    return (yy - r) ** 2 + (xx - c) ** 2


def test_paint_disc_sets_exactly_a_disc_at_the_pixel(sample):
    gt = sample.mask
    d2 = _disc(gt.shape, 40, 60, 7)
    out = mask_ops.paint(gt, [(40, 60)], 7)
    added = out & ~gt
    assert out[d2 <= 6.5**2].all()  # the inside of the disc is painted
    assert not added[d2 > 8**2].any()  # nothing painted beyond the radius
    assert (out & ~added == gt).all()  # the rest of the mask is untouched
    assert gt is not out and mask_ops.paint(gt, [(40, 60)], 7).sum() == out.sum()


def test_erase_disc_clears_pixels_of_the_nodule(sample):
    gt = sample.mask
    r, c = mask_ops.deepest_point(gt)
    out = mask_ops.erase(gt, [(r, c)], 5)
    d2 = _disc(gt.shape, r, c, 5)
    assert not out[d2 <= 4.5**2].any()
    assert (out[d2 > 6**2] == gt[d2 > 6**2]).all()
    assert out.sum() < gt.sum()


def test_stroke_covers_the_segment_between_points(sample):
    empty = np.zeros_like(sample.mask)
    out = mask_ops.paint(empty, [(100, 100), (100, 200), (150, 200)], 3)
    assert out[100, 100:201].all() and out[100:151, 200].all()
    assert not out[130, 150] and not out[100, 210]
    assert not mask_ops.erase(out, [(100, 90), (100, 220)], 4)[100, 100:201].any()


def test_points_outside_the_frame_paint_only_what_is_inside(sample):
    empty = np.zeros_like(sample.mask)
    out = mask_ops.paint(empty, [(-3, -3)], 6)
    assert out[0, 0] and out.sum() < 30


def test_fill_holes_closes_a_ring_but_keeps_border_notches(sample):
    gt = sample.mask
    r, c = mask_ops.deepest_point(gt)
    ring = mask_ops.erase(gt, [(r, c)], 4)
    assert ring.sum() < gt.sum()
    filled = mask_ops.fill_holes(ring)
    assert (filled == mask_ops.fill_holes(gt)).all()
    assert filled[r, c]
    # background touching the frame border is not a hole
    notch = np.zeros_like(gt)
    notch[0:50, 0:50] = True
    notch[0:10, 0:10] = False
    assert (mask_ops.fill_holes(notch) == notch).all()


def test_largest_component_drops_small_islands(sample):
    gt = mask_ops.largest_component(sample.mask)
    island = np.zeros_like(gt)
    island[2:6, 2:6] = True
    assert not (island & cv2.dilate(gt.astype(np.uint8), np.ones((3, 3))).astype(bool)).any()
    out = mask_ops.largest_component(gt | island)
    assert (out == gt).all()
    assert not mask_ops.largest_component(np.zeros_like(gt)).any()


def test_clear_bbox_centroid_and_deepest_point(sample):
    gt = sample.mask
    assert not mask_ops.cleared(gt).any() and gt.any()
    r0, c0, r1, c1 = mask_ops.bounding_box(gt)
    assert gt[r0:r1, c0:c1].sum() == gt.sum() and gt[r0].any() and gt[r1 - 1].any() and gt[:, c0].any() and gt[:, c1 - 1].any()
    assert mask_ops.bounding_box(np.zeros_like(gt)) is None
    r, c = mask_ops.deepest_point(gt)
    assert gt[r, c]
    cr, cc = mask_ops.centroid(gt)
    assert r0 <= cr < r1 and c0 <= cc < c1


def test_negative_click_drops_only_the_stray_pieces_next_to_it(sample):
    from tnseg_desktop.prompts import Click

    gt = mask_ops.largest_component(sample.mask)
    h, w = gt.shape
    r0, c0, r1, c1 = mask_ops.bounding_box(gt)
    mask = gt.copy()
    rr = (r0 + r1) // 2
    right = c1 + 6 if c1 + 30 < w else None
    assert right is not None, "the test frame's nodule leaves room on its right"
    mask[rr - 3 : rr + 3, right : right + 6] = True  # a sliver beside the nodule, where the user clicks
    mask[rr + 10 : rr + 16, right : right + 6] = True  # another one just below it, holding a positive click
    mask[:6, :6] = True  # a piece far away
    neg, pos = Click(rr, right + 8, False), Click(rr + 12, right + 2, True)
    out = mask_ops.drop_pieces_at_negative_clicks(mask, [neg, pos])
    assert not out[rr - 3 : rr + 3, right : right + 6].any()
    assert out[rr + 10 : rr + 16, right : right + 6].all() and out[:6, :6].all()
    assert (out[:, : right - 1] == mask[:, : right - 1]).all()  # the nodule itself is untouched
    # the largest piece stays even when the negative click is right on its edge
    edge = Click(rr, c1, False)
    assert mask_ops.drop_pieces_at_negative_clicks(gt, [edge]).sum() == gt.sum()
    # nothing happens without a negative click, and the input is not modified
    before = mask.copy()
    assert (mask_ops.drop_pieces_at_negative_clicks(mask, [pos]) == mask).all() and (mask == before).all()
