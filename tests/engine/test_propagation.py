"""Propagation through hand-made loops built from a real DDTI frame and nodule shape."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tnseg_desktop.engine import mask_ops
from tnseg_desktop.engine.propagation import StopReason, jump_between, propagate, propagation_prompts
from tnseg_desktop.engine.session import EditingSession, NoRefinerError, Origin
from tnseg_desktop.errors import UserFacingError

try:
    from .interactive_helpers import DiscRefiner, FrameList, ddti_samples
except ImportError:
    from interactive_helpers import DiscRefiner, FrameList, ddti_samples


class BrightestBlob(DiscRefiner):
    """Segments the largest bright blob of the frame, whatever the prompts (so jumps are visible)."""

    def refine(self, frame, prior, prompts):
        self.calls += 1
        self.seen.append((None if prior is None else prior.copy(), prompts))
        return mask_ops.largest_component(frame > 200)


@pytest.fixture(scope="module")
def real(shared_data):
    s = ddti_samples(shared_data, "val", 4)[0]
    shape = mask_ops.largest_component(s.mask)
    r0, c0, r1, c1 = mask_ops.bounding_box(shape)
    return s.image, shape[r0:r1, c0:c1]


def make_loop(real, positions, scales=None):
    """One frame per (row, col) top-left position of the nodule patch (optionally rescaled)."""
    image, patch = real
    frames, masks = [], []
    for k, (r, c) in enumerate(positions):
        p = patch
        if scales is not None and scales[k] != 1.0:
            p = cv2.resize(patch.astype(np.uint8), None, fx=scales[k], fy=scales[k], interpolation=cv2.INTER_NEAREST) > 0
        frame = (image // 3).copy()
        m = np.zeros(image.shape[:2], bool)
        m[r : r + p.shape[0], c : c + p.shape[1]] = p
        frame[m] = 230
        frames.append(frame)
        masks.append(m)
    return frames, masks


def test_prompts_are_a_box_around_the_prior_and_a_click_inside(real):
    _, patch = real
    prior = np.zeros((200, 300), bool)
    prior[50 : 50 + patch.shape[0], 60 : 60 + patch.shape[1]] = patch
    p = propagation_prompts(prior)
    (click,) = p.clicks
    assert click.positive and prior[click.row, click.col]
    r0, c0, r1, c1 = p.box
    b = mask_ops.bounding_box(prior)
    assert r0 <= b[0] and c0 <= b[1] and r1 >= b[2] and c1 >= b[3]
    assert (r1 - r0) < 1.5 * (b[2] - b[0]) + 2


def test_follows_a_slowly_moving_nodule_and_stops_when_it_jumps(real):
    positions = [(40, 60 + 4 * k) for k in range(6)] + [(40, 60 + 4 * 5 + 150), (40, 60 + 4 * 5 + 154)]
    frames, masks = make_loop(real, positions)
    s = EditingSession(FrameList(frames), refiner=BrightestBlob())
    s.set_mask(0, masks[0], Origin.ACCEPTED)
    progress = []
    result = propagate(s, 0, +1, progress=lambda d, t: progress.append(d))
    assert result.frames == [1, 2, 3, 4, 5]
    assert result.reason is StopReason.SHIFT_JUMP and result.stopped_at == 6
    for k in range(1, 6):
        assert s.origin(k) is Origin.PROPAGATED
        assert (s.mask(k) == masks[k]).all()
    assert s.mask(6) is None and s.origin(6) is Origin.NONE
    assert progress == [1, 2, 3, 4, 5]
    # each step was prompted with the previous frame's mask
    prior, prompts = s.refiner.seen[2]
    assert (prior == masks[2]).all() and prompts.box is not None and prompts.clicks[0].positive


def test_stops_when_the_area_jumps_and_goes_backwards(real):
    positions = [(40, 100)] * 7
    scales = [1.8, 1.0, 1.05, 1.1, 1.0, 1.0, 1.0]
    frames, masks = make_loop(real, positions, scales)
    s = EditingSession(FrameList(frames), refiner=BrightestBlob())
    s.set_mask(6, masks[6], Origin.PAINTED)
    result = propagate(s, 6, -1)
    assert result.frames == [5, 4, 3, 2, 1]
    assert result.reason is StopReason.AREA_JUMP and result.stopped_at == 0
    assert s.mask(0) is None


def test_all_propagated_frames_are_one_undo_step_and_never_accepted(real):
    frames, masks = make_loop(real, [(40, 60 + 3 * k) for k in range(5)])
    s = EditingSession(FrameList(frames), refiner=BrightestBlob())
    s.set_mask(0, masks[0], Origin.ACCEPTED)
    result = propagate(s, 0, +1, max_frames=3)
    assert result.frames == [1, 2, 3] and result.reason is StopReason.DONE
    assert Origin.ACCEPTED not in [s.origin(i) for i in (1, 2, 3)]
    assert s.undo()
    assert [s.mask(i) for i in (1, 2, 3)] == [None, None, None]
    assert s.origin(0) is Origin.ACCEPTED


def test_stops_before_the_users_own_work_and_when_cancelled(real):
    frames, masks = make_loop(real, [(40, 60 + 3 * k) for k in range(6)])
    s = EditingSession(FrameList(frames), refiner=BrightestBlob())
    s.set_mask(0, masks[0], Origin.ACCEPTED)
    s.paint_disc(3, 5, 5, 3)
    result = propagate(s, 0, +1)
    assert result.frames == [1, 2] and result.reason is StopReason.USER_FRAME and result.stopped_at == 3
    assert s.mask(3).sum() < 50
    s.set_mask(3, masks[3], Origin.PAINTED)
    stops = iter([False, True])
    result = propagate(s, 3, +1, should_stop=lambda: next(stops))
    assert result.reason is StopReason.CANCELLED and result.frames == [4] and s.mask(5) is None


def test_empty_result_and_missing_inputs(real):
    frames, masks = make_loop(real, [(40, 60)] * 3)
    frames[2] = frames[2] // 2  # the nodule fades out
    s = EditingSession(FrameList(frames), refiner=BrightestBlob())
    s.set_mask(0, masks[0], Origin.PAINTED)
    result = propagate(s, 0, +1)
    assert result.frames == [1] and result.reason is StopReason.EMPTY
    with pytest.raises(UserFacingError):
        propagate(s, 2, +1)
    with pytest.raises(NoRefinerError):
        propagate(EditingSession(FrameList(frames)), 0, +1)


def test_jump_thresholds():
    a = np.zeros((100, 100), bool)
    a[40:60, 40:60] = True
    assert jump_between(a, a, 1.5, 0.5) is None
    assert jump_between(a, np.roll(a, 9, axis=1), 1.5, 0.5) is None
    assert jump_between(a, np.roll(a, 11, axis=1), 1.5, 0.5) is StopReason.SHIFT_JUMP
    big = np.zeros_like(a)
    big[35:65, 35:65] = True  # x2.25 the area
    assert jump_between(a, big, 1.5, 0.5) is StopReason.AREA_JUMP
    assert jump_between(big, a, 1.5, 0.5) is StopReason.AREA_JUMP
    assert jump_between(a, np.zeros_like(a), 1.5, 0.5) is StopReason.EMPTY
