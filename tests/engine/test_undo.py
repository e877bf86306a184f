"""Undo/redo: exact restoration over long random edit sequences, compact diffs, bounded memory."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tnseg_desktop.engine.session import EditingSession, Origin
from tnseg_desktop.engine.undo import FrameChange, History, PackedXor, Step

try:
    from .interactive_helpers import DiscRefiner, FixedAuto, FrameList, ddti_samples
except ImportError:
    from interactive_helpers import DiscRefiner, FixedAuto, FrameList, ddti_samples


def test_packed_xor_is_cropped_self_inverse_and_small(shared_data):
    gt = ddti_samples(shared_data, "val", 2)[0].mask
    after = gt.copy()
    after[100:110, 200:230] ^= True
    x = PackedXor.between(gt, after)
    assert x.box == (100, 200, 110, 230)
    assert x.nbytes == (10 * 30 + 7) // 8
    assert (x.apply(gt) == after).all() and (x.apply(after) == gt).all()
    assert PackedXor.between(gt, gt.copy()) is None
    with pytest.raises(ValueError):
        x.apply(np.zeros((5, 5), bool))


def _step(label: str, nbytes: int) -> Step:
    shape = (64, 64 * 8)
    before = np.zeros(shape, bool)
    after = before.copy()
    after.reshape(-1)[: nbytes * 8] = True
    return Step(label, [FrameChange(0, {"mask": PackedXor.between(before, after)})])


def test_history_drops_the_oldest_steps_beyond_its_budget():
    h = History(max_bytes=10_000)
    for i in range(20):
        h.push(_step(str(i), 1000))
    assert h.undo_bytes <= 10_000
    assert 5 <= len(h) < 10 and h.undo_label == "19"
    labels = []
    while (s := h.pop_undo()) is not None:
        labels.append(s.label)
    assert labels == [str(i) for i in range(19, 19 - len(labels), -1)]
    assert h.undo_bytes == 0


def test_a_single_step_over_budget_is_kept_and_new_steps_clear_redo():
    h = History(max_bytes=100)
    h.push(_step("big", 5000))
    assert len(h) == 1
    h.push(_step("next", 5000))
    assert len(h) == 1 and h.undo_label == "next"
    h.push_redo(h.pop_undo())
    assert h.can_redo and h.redo_label == "next"
    h.push(_step("new", 10))
    assert not h.can_redo


def test_session_undo_memory_stays_bounded_and_what_remains_undoes_exactly(shared_data):
    samples = ddti_samples(shared_data, "val", 2)
    s = EditingSession(FrameList([x.image for x in samples]), history_bytes=40_000)
    snapshots = [None]
    for k in range(60):
        s.paint_disc(0, 180, 280, 20 + k)  # each step grows the disc: a ~2-10 kB diff
        snapshots.append(s.mask(0))
    assert s.history.undo_bytes <= 40_000
    kept = len(s.history)
    assert 3 <= kept < 60
    for k in range(kept):
        assert s.undo()
        assert (s.mask(0) == snapshots[59 - k]).all()
    assert not s.undo()


def _state(s: EditingSession) -> list:
    out = []
    for i in range(len(s)):
        v = s.view(i)
        out.append((None if v.mask is None else v.mask.tobytes(), v.origin, v.prompts.clicks, v.prompts.box, v.prompts.text, None if v.auto_mask is None else v.auto_mask.tobytes()))
    return out


ROWS, COLS = 360, 560
coord = st.tuples(st.integers(-5, ROWS + 5), st.integers(-5, COLS + 5))
inside = st.tuples(st.integers(0, ROWS - 1), st.integers(0, COLS - 1))
frame_ix = st.integers(0, 1)
op = st.one_of(
    st.tuples(st.just("paint_disc"), frame_ix, coord, st.integers(0, 40)),
    st.tuples(st.just("erase_disc"), frame_ix, coord, st.integers(0, 40)),
    st.tuples(st.just("paint_stroke"), frame_ix, st.lists(coord, min_size=1, max_size=5), st.integers(1, 15)),
    st.tuples(st.just("erase_stroke"), frame_ix, st.lists(coord, min_size=1, max_size=5), st.integers(1, 15)),
    st.tuples(st.just("fill_holes"), frame_ix),
    st.tuples(st.just("keep_largest_component"), frame_ix),
    st.tuples(st.just("clear"), frame_ix),
    st.tuples(st.just("accept"), frame_ix),
    st.tuples(st.just("auto_mask"), frame_ix),
    st.tuples(st.just("add_click"), frame_ix, inside, st.booleans()),
    st.tuples(st.just("remove_click"), frame_ix, st.integers(0, 3)),
    st.tuples(st.just("set_box"), frame_ix, st.one_of(st.none(), st.tuples(inside, inside))),
    st.tuples(st.just("undo")),
    st.tuples(st.just("redo")),
)


def _run(s: EditingSession, o: tuple) -> None:
    name = o[0]
    if name in ("undo", "redo"):
        getattr(s, name)()
    elif name in ("paint_disc", "erase_disc"):
        getattr(s, name)(o[1], o[2][0], o[2][1], o[3])
    elif name in ("paint_stroke", "erase_stroke"):
        getattr(s, name)(o[1], o[2], o[3])
    elif name == "add_click":
        s.add_click(o[1], o[2][0], o[2][1], o[3])
    elif name == "remove_click":
        if o[2] < len(s.prompts(o[1]).clicks):
            s.remove_click(o[1], o[2])
    elif name == "set_box":
        box = o[2]
        if box is not None:
            (a, b), (c, d) = box
            if abs(a - c) < 2 or abs(b - d) < 2:
                return
            box = (a, b, c, d)
        s.set_box(o[1], box)
    else:
        getattr(s, name)(o[1])


@pytest.fixture(scope="module")
def frames_and_masks(shared_data):
    samples = ddti_samples(shared_data, "val", 2)
    assert all(x.image.shape[:2] == (ROWS, COLS) for x in samples)
    return [x.image for x in samples], [x.mask for x in samples]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=st.lists(op, min_size=1, max_size=60))
def test_undo_and_redo_restore_every_state_exactly(frames_and_masks, ops):
    frames, masks = frames_and_masks
    s = EditingSession(FrameList(frames), refiner=DiscRefiner(radius=9), auto_model=FixedAuto(frames, masks))
    states = [_state(s)]  # states[k] = after k undoable steps of the current line of history
    redo_states: list = []  # states that redo brings back, next one last
    for o in ops:
        if o[0] == "undo":
            if s.undo():
                redo_states.append(states.pop())
            else:
                assert len(states) == 1
            assert _state(s) == states[-1]
            continue
        if o[0] == "redo":
            if s.redo():
                states.append(redo_states.pop())
            else:
                assert not redo_states
            assert _state(s) == states[-1]
            continue
        before = len(s.history)
        _run(s, o)
        if len(s.history) > before:
            states.append(_state(s))
            redo_states.clear()
        else:
            assert _state(s) == states[-1]  # an operation that records nothing changes nothing
    depth = len(states) - 1
    assert len(s.history) == depth
    full_line = states + redo_states[::-1]
    for k in range(depth, 0, -1):
        assert s.undo()
        assert _state(s) == states[k - 1]
    assert not s.undo()
    for k in range(1, len(full_line)):
        assert s.redo()
        assert _state(s) == full_line[k]
    assert not s.redo()
