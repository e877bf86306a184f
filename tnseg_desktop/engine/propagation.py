"""Carrying a mask through the cine, frame by frame, until the object jumps.

Each next frame is refined from the previous frame's mask with a box around
it and a positive click at its deepest point. Propagation stops before a
frame whose result grows or shrinks by more than ``area_jump`` or whose
centroid moves by more than ``shift_jump`` times the object's size, comes
out empty, or already holds the user's work. Propagated frames are marked
``Origin.PROPAGATED`` for review; nothing is accepted here.
"""

from __future__ import annotations

import enum
import math
import uuid
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from tnseg_desktop.engine import mask_ops
from tnseg_desktop.engine.refiner_base import Prompts
from tnseg_desktop.engine.session import USER_ORIGINS, EditingSession, NoRefinerError, Origin
from tnseg_desktop.errors import UserFacingError
from tnseg_desktop.prompts import Click


class StopReason(enum.Enum):
    DONE = "reached the frame limit or the end of the loop"
    AREA_JUMP = "the area changed too much"
    SHIFT_JUMP = "the object moved too far"
    EMPTY = "the mask vanished"
    USER_FRAME = "reached a frame holding the user's own mask"
    CANCELLED = "cancelled"


@dataclass
class PropagationResult:
    frames: list[int] = field(default_factory=list)  # the frames that got a propagated mask, in order
    reason: StopReason = StopReason.DONE
    stopped_at: int | None = None  # the frame that was not written because of ``reason``


def propagation_prompts(prior: np.ndarray, box_margin: float = 0.15) -> Prompts:
    """Box around the prior (enlarged) and a positive click at its deepest point."""
    h, w = prior.shape
    bb = mask_ops.bounding_box(prior)
    point = mask_ops.deepest_point(prior)
    if bb is None or point is None:
        return Prompts()
    r0, c0, r1, c1 = bb
    mr, mc = int(math.ceil((r1 - r0) * box_margin)), int(math.ceil((c1 - c0) * box_margin))
    box = (max(0, r0 - mr), max(0, c0 - mc), min(h, r1 + mr), min(w, c1 + mc))
    return Prompts(clicks=[Click(point[0], point[1], True)], box=box)


def jump_between(prev: np.ndarray, new: np.ndarray, area_jump: float, shift_jump: float) -> StopReason | None:
    """Why ``new`` is not a plausible continuation of ``prev`` (None when it is)."""
    a_prev, a_new = int(prev.sum()), int(new.sum())
    if a_new == 0:
        return StopReason.EMPTY
    ratio = a_new / max(1, a_prev)
    if ratio > area_jump or ratio < 1.0 / area_jump:
        return StopReason.AREA_JUMP
    cp, cn = mask_ops.centroid(prev), mask_ops.centroid(new)
    assert cp is not None and cn is not None
    size = math.sqrt(a_prev)  # the side of a square of the same area
    if math.hypot(cn[0] - cp[0], cn[1] - cp[1]) > shift_jump * size:
        return StopReason.SHIFT_JUMP
    return None


def propagate(
    session: EditingSession,
    start_frame: int,
    direction: int = 1,
    max_frames: int | None = None,
    area_jump: float = 1.5,
    shift_jump: float = 0.5,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> PropagationResult:
    """Propagate the start frame's mask forward (direction=+1) or backward (-1).

    All written frames form one undo step unless another edit comes in between.
    """
    if direction not in (1, -1):
        raise ValueError("direction must be +1 or -1")
    refiner = session.refiner
    if refiner is None:
        raise NoRefinerError()
    prev = session.mask(start_frame)
    if prev is None or not prev.any():
        raise UserFacingError("This frame has no mask to propagate; segment the nodule here first.")
    n = len(session)
    last = n - 1 if direction > 0 else 0
    available = abs(last - start_frame)
    total = available if max_frames is None else min(available, max(0, int(max_frames)))
    group = ("propagate", uuid.uuid4().hex)
    result = PropagationResult()
    index = start_frame
    for step in range(total):
        if should_stop is not None and should_stop():
            result.reason = StopReason.CANCELLED
            return result
        index += direction
        if session.origin(index) in USER_ORIGINS:
            result.reason, result.stopped_at = StopReason.USER_FRAME, index
            return result
        prompts = propagation_prompts(prev)
        new = refiner.refine(session.frame(index), prev, prompts)
        reason = jump_between(prev, new, area_jump, shift_jump)
        if reason is not None:
            result.reason, result.stopped_at = reason, index
            return result
        session.set_mask(index, new, Origin.PROPAGATED, label="propagate", group=group, prompts=Prompts())
        result.frames.append(index)
        prev = new
        if progress is not None:
            progress(step + 1, total)
    return result
