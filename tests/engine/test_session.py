"""EditingSession operations on real DDTI frames: masks, origins, prompts, listeners, models, threads."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from tnseg_desktop.engine import mask_ops
from tnseg_desktop.engine.session import Change, EditingSession, NoAutoModelError, NoRefinerError, Origin, TextPromptUnavailable
from tnseg_desktop.errors import UserFacingError
from tnseg_desktop.prompts import Click

try:
    from .interactive_helpers import DiscRefiner, FixedAuto, FrameList, ddti_samples
except ImportError:
    from interactive_helpers import DiscRefiner, FixedAuto, FrameList, ddti_samples


@pytest.fixture
def samples(shared_data):
    return ddti_samples(shared_data, "val", 4)


@pytest.fixture
def session(samples):
    frames = [s.image for s in samples]
    return EditingSession(FrameList(frames), refiner=DiscRefiner(), auto_model=FixedAuto(frames, [s.mask for s in samples]))


def test_a_new_session_has_no_masks_and_decodes_nothing(session):
    assert len(session) == 4
    assert session.mask(0) is None and session.origin(0) is Origin.NONE
    assert session.origins() == [Origin.NONE] * 4
    assert session.source.decoded == []
    assert not session.can_undo and not session.can_redo


def test_plain_list_of_frames_is_a_source(samples):
    s = EditingSession([x.image for x in samples])
    s.paint_disc(1, 10, 10, 3)
    assert s.mask(1)[10, 10] and s.mask(1).shape == samples[1].image.shape


def test_auto_mask_sets_mask_origin_and_keeps_the_model_mask(session, samples):
    m = session.auto_mask(0)
    assert (m == samples[0].mask).all()
    assert session.origin(0) is Origin.AUTO
    session.paint_disc(0, 5, 5, 3)
    assert session.origin(0) is Origin.PAINTED
    assert (session.auto_mask_of(0) == samples[0].mask).all()  # the model's own mask stays for the store
    assert not (session.mask(0) == samples[0].mask).all()


def test_auto_mask_range_skips_user_work_reports_progress_and_is_one_undo_step(session, samples):
    session.paint_disc(2, 50, 50, 4)
    seen = []
    done = session.auto_mask_range(range(4), progress=lambda d, t: seen.append((d, t)), batch_size=2)
    assert done == [0, 1, 2, 3] and seen == [(2, 4), (4, 4)]
    assert [session.origin(i) for i in range(4)] == [Origin.AUTO, Origin.AUTO, Origin.PAINTED, Origin.AUTO]
    assert session.mask(2).sum() < 100  # the painted disc, not the automatic mask
    assert (session.auto_mask_of(2) == samples[2].mask).all()
    session.undo()
    assert session.mask(0) is None and session.mask(3) is None and session.origin(2) is Origin.PAINTED
    assert session.auto_mask_of(2) is None


def test_auto_mask_range_stops_when_asked(session):
    calls = {"n": 0}

    def should_stop():
        calls["n"] += 1
        return calls["n"] > 1

    assert session.auto_mask_range(range(4), should_stop=should_stop, batch_size=1) == [0]
    assert session.mask(1) is None


def test_paint_and_erase_disc_change_exactly_those_pixels(session, samples):
    session.auto_mask(1)
    gt = samples[1].mask
    session.paint_disc(1, 20, 30, 5)
    assert (session.mask(1) == mask_ops.paint(gt, [(20, 30)], 5)).all()
    r, c = mask_ops.deepest_point(gt)
    session.erase_disc(1, r, c, 6)
    assert (session.mask(1) == mask_ops.erase(mask_ops.paint(gt, [(20, 30)], 5), [(r, c)], 6)).all()
    assert not session.mask(1)[r, c]


def test_a_stroke_is_one_undo_step(session):
    session.paint_stroke(0, [(10, 10), (10, 80), (60, 80)], 3)
    session.erase_stroke(0, [(10, 40), (10, 50)], 2)
    assert session.mask(0)[60, 80] and not session.mask(0)[10, 45]
    assert session.undo()
    assert session.mask(0)[10, 45]
    assert session.undo()
    assert session.mask(0) is None and session.origin(0) is Origin.NONE


def test_live_painting_with_a_group_token_merges_into_one_step(session):
    for col in range(10, 60, 5):
        session.paint_disc(0, 30, col, 3, group="stroke-1")
    session.paint_disc(0, 90, 90, 3, group="stroke-2")
    assert session.undo()
    assert session.mask(0)[30, 10] and not session.mask(0)[90, 90]
    assert session.undo()
    assert session.mask(0) is None


def test_fill_holes_largest_component_and_clear(session, samples):
    gt = mask_ops.largest_component(samples[0].mask)
    session.set_mask(0, gt, Origin.PAINTED)
    r, c = mask_ops.deepest_point(gt)
    session.erase_disc(0, r, c, 4)
    session.fill_holes(0)
    assert (session.mask(0) == mask_ops.fill_holes(gt)).all()
    session.paint_disc(0, 3, 3, 2)
    session.keep_largest_component(0)
    assert not session.mask(0)[3, 3] and session.mask(0)[r, c]
    session.add_click(0, 5, 5, True)
    session.clear(0)
    assert not session.mask(0).any() and session.prompts(0).clicks == []
    assert session.origin(0) is Origin.PAINTED


def test_accept_sets_origin_and_accepts_an_absent_mask_as_empty(session, samples):
    session.auto_mask(0)
    session.accept(0)
    assert session.origin(0) is Origin.ACCEPTED and (session.mask(0) == samples[0].mask).all()
    session.accept(3)
    assert session.origin(3) is Origin.ACCEPTED and not session.mask(3).any()
    assert session.frames_with(Origin.ACCEPTED) == [0, 3]
    session.undo()
    assert session.origin(3) is Origin.NONE and session.mask(3) is None
    session.paint_disc(0, 5, 5, 2)
    assert session.origin(0) is Origin.PAINTED  # an edit after accepting needs a new review


def test_add_click_refines_with_all_prompts_and_prior(session, samples):
    session.auto_mask(0)
    gt = samples[0].mask
    m = session.add_click(0, 10, 10, True)
    assert m[10, 10] and session.origin(0) is Origin.REFINED
    m = session.add_click(0, 200, 100, False)
    prior, prompts = session.refiner.seen[-1]
    assert prompts.clicks == [Click(10, 10, True), Click(200, 100, False)]
    assert (prior == mask_ops.paint(gt, [(10, 10)], 6)).all()
    assert session.prompts(0).clicks == prompts.clicks
    with pytest.raises(UserFacingError):
        session.add_click(0, 10_000, 5, True)


def test_remove_click_recomputes_from_the_mask_before_the_first_click(session, samples):
    session.auto_mask(0)
    gt = samples[0].mask
    session.add_click(0, 10, 10, True)
    session.add_click(0, 20, 300, True)
    session.remove_click(0, 0)
    assert (session.mask(0) == mask_ops.paint(gt, [(20, 300)], 6)).all()
    assert session.prompts(0).clicks == [Click(20, 300, True)]
    session.remove_click(0, 0)
    assert (session.mask(0) == gt).all() and session.origin(0) is Origin.AUTO
    with pytest.raises(IndexError):
        session.remove_click(0, 0)
    session.undo()
    assert session.prompts(0).clicks == [Click(20, 300, True)] and session.origin(0) is Origin.REFINED


def test_set_box_refines_inside_it_and_removing_it_goes_back(session, samples):
    session.auto_mask(0)
    gt = samples[0].mask
    r0, c0, r1, c1 = mask_ops.bounding_box(gt)
    box = (r0, c0, (r0 + r1) // 2, c1)
    session.set_box(0, box)
    assert session.prompts(0).box == box
    assert not session.mask(0)[(r0 + r1) // 2 :].any() and session.mask(0).any()
    session.set_box(0, None)
    assert session.prompts(0).box is None and (session.mask(0) == gt).all()
    with pytest.raises(UserFacingError):
        session.set_box(0, (5, 5, 5, 9))


def test_without_models_the_session_says_so(samples):
    s = EditingSession(FrameList([x.image for x in samples]))
    with pytest.raises(NoAutoModelError):
        s.auto_mask(0)
    with pytest.raises(NoRefinerError):
        s.add_click(0, 5, 5, True)
    assert s.prompts(0).clicks == [] and not s.can_undo
    s.paint_disc(0, 5, 5, 2)  # the other tools keep working
    assert s.mask(0)[5, 5]


def test_text_prompt_failure_is_one_sentence_and_changes_nothing(session, monkeypatch):
    import builtins
    import sys

    real_import = builtins.__import__

    def no_text_module(name, *args, **kwargs):
        if name == "tnseg_desktop.engine.text_prompt":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "tnseg_desktop.engine.text_prompt", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_text_module)
    with pytest.raises(TextPromptUnavailable) as info:
        session.apply_text(0, "nodule")
    assert info.value.one_line().count(".") == 1
    assert session.mask(0) is None and not session.can_undo


def test_text_prompt_uses_the_text_module_and_is_undoable(session, monkeypatch, samples):
    import sys
    import types

    calls = []

    def text_to_mask(frame, text, prior, sam_refiner, clip_predictor):
        calls.append((text, prior, sam_refiner, clip_predictor))
        if text == "gland":
            raise UserFacingError("No CLIP weights are installed, so text prompts cannot run.")
        return samples[0].mask

    fake = types.ModuleType("tnseg_desktop.engine.text_prompt")
    fake.text_to_mask = text_to_mask
    monkeypatch.setitem(sys.modules, "tnseg_desktop.engine.text_prompt", fake)
    session.set_clip_predictor("clip")
    out = session.apply_text(0, "  solid   nodule ")
    assert (out == samples[0].mask).all() and session.prompts(0).text == "solid nodule"
    assert calls[0][0] == "solid nodule" and calls[0][2] is session.refiner and calls[0][3] == "clip"
    with pytest.raises(UserFacingError, match="No CLIP weights"):
        session.apply_text(0, "gland")
    assert session.prompts(0).text == "solid nodule"
    session.undo()
    assert session.mask(0) is None and session.prompts(0).text is None


def test_listeners_hear_each_change_and_can_unsubscribe(session):
    events = []
    unsubscribe = session.subscribe(lambda i, what: events.append((i, what)))
    session.subscribe(lambda i, what: 1 / 0)  # a broken listener does not break editing
    session.paint_disc(1, 5, 5, 2)
    assert events[-1][0] == 1 and Change.MASK in events[-1][1] and Change.ORIGIN in events[-1][1]
    session.add_click(1, 30, 30, True)
    assert Change.PROMPTS in events[-1][1]
    session.undo()
    assert events[-1][0] == 1 and Change.MASK in events[-1][1]
    session.set_refiner(DiscRefiner())
    assert events[-1] == (None, Change.REFINER)
    n = len(events)
    unsubscribe()
    session.paint_disc(1, 9, 9, 2)
    assert len(events) == n


def test_swapping_the_refiner_invalidates_the_old_one(session):
    class Spy(DiscRefiner):
        invalidated = 0

        def invalidate(self):
            Spy.invalidated += 1

    old = Spy()
    session.set_refiner(old)
    session.set_refiner(DiscRefiner(radius=2))
    assert Spy.invalidated == 1
    session.add_click(0, 50, 50, True)
    assert session.mask(0).sum() < 30 and old.calls == 0


def test_a_click_computed_while_the_user_paints_is_recomputed_on_the_new_mask(session):
    class Slow(DiscRefiner):
        def refine(self, frame, prior, prompts):
            if self.calls == 0:
                started.set()
                assert painted.wait(5)
            return super().refine(frame, prior, prompts)

    started, painted = threading.Event(), threading.Event()
    session.set_refiner(Slow())
    worker = threading.Thread(target=session.add_click, args=(0, 100, 100, True))
    worker.start()
    assert started.wait(5)
    session.paint_disc(0, 10, 10, 3)  # the GUI thread is not blocked by the running refinement
    painted.set()
    worker.join(5)
    m = session.mask(0)
    assert m[10, 10] and m[100, 100]  # neither edit is lost
    assert session.refiner.calls == 2
    session.undo()
    assert session.mask(0)[10, 10] and not session.mask(0)[100, 100]


def test_gui_thread_reads_do_not_wait_for_a_refinement(session):
    release = threading.Event()

    class Blocking(DiscRefiner):
        def refine(self, frame, prior, prompts):
            release.wait(5)
            return super().refine(frame, prior, prompts)

    session.set_refiner(Blocking())
    worker = threading.Thread(target=session.add_click, args=(0, 40, 40, True))
    worker.start()
    t0 = time.perf_counter()
    session.mask(0), session.origins(), session.paint_disc(1, 3, 3, 2)
    assert time.perf_counter() - t0 < 1.0
    release.set()
    worker.join(5)
    assert session.mask(0)[40, 40]


def test_restore_loads_state_without_history(session, samples):
    session.restore(0, samples[0].mask, Origin.ACCEPTED, auto_mask=samples[0].mask)
    assert session.origin(0) is Origin.ACCEPTED and not session.can_undo
    with pytest.raises(ValueError):
        session.restore(0, np.zeros((3, 3), bool), Origin.PAINTED)
