"""LiteRefiner: zoom-in crop geometry, click placement through the crop, structure with random weights."""

from __future__ import annotations

import os
import numpy as np
import pytest
import torch

from tnseg_desktop.engine import mask_ops
from tnseg_desktop.engine.lite_refiner import LiteRefiner, crop_around
from tnseg_desktop.engine.refiner_base import Prompts, Refiner
from tnseg_desktop.engine.session import EditingSession
from tnseg_desktop.prompts import Click

try:
    from .interactive_helpers import FrameList, ddti_samples, random_lite, tiny_trained_lite
except ImportError:
    from interactive_helpers import FrameList, ddti_samples, random_lite, tiny_trained_lite


class EchoNet(torch.nn.Module):
    """Stand-in network whose logits are prior + positive clicks - negative clicks: shows where clicks land."""

    input_size = 64

    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[tuple[torch.Tensor, torch.Tensor | None]] = []

    def forward(self, image01, extra=None):
        self.inputs.append((image01.detach().clone(), None if extra is None else extra.detach().clone()))
        if extra is None:
            return image01[:, :1] * 0 - 10
        return (extra[:, 0:1] + extra[:, 1:2] - 2 * extra[:, 2:3] - 0.5) * 20


@pytest.fixture(scope="module")
def sample(shared_data):
    return ddti_samples(shared_data, "val", 6)[0]


def test_crop_holds_prior_and_clicks_with_margin_and_is_square():
    prior = np.zeros((360, 560), bool)
    prior[100:150, 200:260] = True
    crop = crop_around(prior.shape, prior, [Click(170, 250, True)], None, expand=0.4)
    r0, c0, r1, c1 = crop
    assert r0 <= 100 and c0 <= 200 and r1 >= 171 and c1 >= 260
    assert abs((r1 - r0) - (c1 - c0)) <= 2
    assert (r1 - r0) == pytest.approx(71 * 1.4, abs=2)
    assert crop_around(prior.shape, None, [], None) is None
    # a lone click gets a minimum window; a huge object gives the whole frame
    r0, c0, r1, c1 = crop_around(prior.shape, None, [Click(5, 5, True)], None)
    assert (r0, c0) == (0, 0) and r1 - r0 >= 90 and c1 - c0 >= 90
    assert crop_around(prior.shape, np.ones_like(prior), [], None) is None
    # the window slides inside the frame instead of shrinking at the border
    r0, c0, r1, c1 = crop_around(prior.shape, None, [Click(355, 555, True), Click(300, 500, True)], None)
    assert r1 == 360 and c1 == 560 and r1 - r0 == c1 - c0


def test_a_far_positive_click_adds_pixels_right_there_and_keeps_the_prior(sample):
    net = EchoNet()
    ref = LiteRefiner(net, threshold=0.5)
    assert isinstance(ref, Refiner) and ref.needs_embedding is False
    gt = mask_ops.largest_component(sample.mask)
    r0, c0, r1, c1 = mask_ops.bounding_box(gt)
    far = (max(5, r0 - 60), min(555, c1 + 60)) if r0 > 70 else (min(354, r1 + 60), max(5, c0 - 60))
    assert not gt[far]
    out = ref.refine(sample.image, gt, Prompts([Click(far[0], far[1], True)]))
    assert out.shape == gt.shape and out.dtype == bool
    yy, xx = np.ogrid[: gt.shape[0], : gt.shape[1]]
    d2 = (yy - far[0]) ** 2 + (xx - far[1]) ** 2
    assert out[d2 <= 9].all()  # the clicked spot is now foreground...
    added = out & ~gt
    # ...and far from it only the prior's outline moves a little (the 64-pixel crop round trip)
    import cv2

    near_outline = cv2.dilate(gt.astype(np.uint8), np.ones((13, 13), np.uint8)).astype(bool)
    assert added[d2 <= 40**2].sum() > 20 and not (added & ~near_outline)[d2 > 40**2].any()
    assert out[gt].mean() > 0.95  # the prior survives the crop round trip
    # the network saw a zoomed crop (not the whole frame) holding prior and click
    _, extra = net.inputs[-1]
    assert extra.shape[-1] == 64 and extra[0, 1].sum() > 0 and extra[0, 0].sum() > 0


def test_negative_click_removes_pixels_only_around_it(sample):
    ref = LiteRefiner(EchoNet())
    gt = mask_ops.largest_component(sample.mask)
    r, c = mask_ops.deepest_point(gt)
    out = ref.refine(sample.image, gt, Prompts([Click(r, c, False)]))
    assert not out[r, c] and out.sum() < gt.sum()
    yy, xx = np.ogrid[: gt.shape[0], : gt.shape[1]]
    far = (yy - r) ** 2 + (xx - c) ** 2 > 30**2
    assert out[gt & far].mean() > 0.95


def test_a_negative_click_on_a_stray_piece_leaves_no_ring_around_it(sample):
    """The network cuts only a disc at the click; what is left of that piece around it is dropped."""
    ref = LiteRefiner(EchoNet())
    gt = mask_ops.largest_component(sample.mask)
    r0, c0, r1, c1 = mask_ops.bounding_box(gt)
    h, w = gt.shape
    # a 40-pixel piece beside the nodule, and a second one on the far side the click does not touch
    side = 40
    pr = min(max(0, (r0 + r1) // 2 - side // 2), h - side)
    pc = c1 + 15 if c1 + 15 + side <= w else c0 - 15 - side
    qc = c0 - 15 - side if pc > c1 else c1 + 15
    prior = gt.copy()
    prior[pr : pr + side, pc : pc + side] = True
    prior[pr : pr + side, qc : qc + side] = True
    assert mask_ops.largest_component(prior).sum() == gt.sum()  # the pieces are separate from the nodule
    click = Click(pr + side // 2, pc + side // 2, False)
    out = ref.refine(sample.image, prior, Prompts([click]))
    assert not out[pr : pr + side, pc : pc + side].any()  # no sliver of the clicked piece survives
    assert out[pr + 3 : pr + side - 3, qc + 3 : qc + side - 3].mean() > 0.9  # the untouched piece stays (64-px crop round trip)
    assert out[gt].mean() > 0.9  # the nodule survives (its outline moves a little through the crop)
    # without the tidy step the network alone would have left a ring around the click
    raw = ref.predictor.refine_prob(sample.image, prior, [click], crop=ref.crop_for(gt.shape, prior, Prompts([click]))) >= 0.5
    assert raw[pr : pr + side, pc : pc + side].sum() > 100 and not raw[click.row, click.col]


def test_box_alone_gets_a_centre_click_and_limits_the_result(sample):
    net = EchoNet()
    ref = LiteRefiner(net)
    box = (100, 200, 180, 300)
    out = ref.refine(sample.image, None, Prompts(box=box))
    assert out[140, 250] and not out[:100].any() and not out[:, 300:].any()
    _, extra = net.inputs[-1]
    assert extra[0, 1].sum() > 0  # the centre click reached the network


def test_random_weights_run_on_a_crop_at_frame_size(sample):
    ref = LiteRefiner(random_lite(0, size=64))
    gt = sample.mask
    out = ref.refine(sample.image, gt, Prompts([Click(*mask_ops.deepest_point(gt), True)]))
    assert out.shape == gt.shape and out.dtype == bool
    # outside the zoom window the prior is returned untouched
    r0, c0, r1, c1 = ref.crop_for(gt.shape, gt, Prompts([Click(*mask_ops.deepest_point(gt), True)]))
    outside = np.ones_like(gt)
    outside[r0:r1, c0:c1] = False
    assert outside.any() and (out[outside] == gt[outside]).all()
    probs = ref.auto_probs([sample.image])
    assert probs[0].shape == gt.shape


def test_session_drives_the_lite_refiner(sample):
    ref = LiteRefiner(EchoNet())
    s = EditingSession(FrameList([sample.image]), refiner=ref, auto_model=ref)
    s.auto_mask(0)
    m = s.add_click(0, 120, 240, True)
    assert m[120, 240]
    assert not s.add_click(0, 120, 240, False)[120, 240]


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("TNSEG_TRAINING_TESTS"), reason="trains a network for ~30-100 s on a shared CPU; set TNSEG_TRAINING_TESTS=1")
def test_trained_tiny_model_grows_the_mask_at_a_positive_click(shared_data):
    """A tiny tnseg-lite trained briefly on 8 frames: a click on a missed nodule adds pixels around it."""
    torch.set_num_threads(1)
    ref = LiteRefiner(tiny_trained_lite(shared_data, steps=60))
    near_minus_far = []
    for s in ddti_samples(shared_data, "val", 6):
        r, c = mask_ops.deepest_point(s.mask)
        out = ref.refine(s.image, None, Prompts([Click(r, c, True)]))
        yy, xx = np.ogrid[: s.mask.shape[0], : s.mask.shape[1]]
        near = (yy - r) ** 2 + (xx - c) ** 2 <= 15**2
        near_minus_far.append(out[near].mean() - out[~near].mean())
    assert np.median(near_minus_far) > 0.02
