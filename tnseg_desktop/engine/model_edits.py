"""The editing session's model-driven edits: automatic masks, click/box refinement and text prompts.

These run a network pass (heavy; a worker thread) outside the session's lock
on a snapshot and commit afterwards, recomputed if the frame or the model
changed in between. They work on the session's shared state, which they are
given as a :class:`SessionState` (engine/session.py's ``SessionCore``).
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import replace
from typing import Any, Callable, Hashable, Iterable, Protocol

import numpy as np

from tnseg_desktop.engine.frame_state import (
    USER_ORIGINS,
    AutoSegmenter,
    Change,
    FrameMeta,
    Origin,
    Progress,
    _FrameState,
    _Update,
)
from tnseg_desktop.engine.refiner_base import Refiner
from tnseg_desktop.errors import UserFacingError
from tnseg_desktop.prompts import Box, Click

_MAX_RECOMPUTES = 3


class NoRefinerError(UserFacingError):
    def __init__(self) -> None:
        super().__init__("No refiner is loaded, so clicks and boxes cannot change the mask; load tnseg-lite or a SAM model first.")


class NoAutoModelError(UserFacingError):
    def __init__(self) -> None:
        super().__init__("No segmentation model is loaded, so automatic masks are not available.")


class TextPromptUnavailable(UserFacingError):
    def __init__(self) -> None:
        super().__init__("Text prompts are not available in this installation; clicks, boxes and painting still work.")


class SessionState(Protocol):
    """What the model-driven edits use of their session's state: its lock, frames, per-frame records,
    models (with the generation that a model swap bumps), commit and notify."""

    lock: threading.RLock
    threshold: float
    generation: int
    refiner: Refiner | None
    auto_model: AutoSegmenter | None
    clip_predictor: Any

    def frame(self, index: int) -> np.ndarray: ...

    def shape(self, index: int) -> tuple[int, int]: ...

    def check_index(self, index: int) -> None: ...

    def state(self, index: int) -> _FrameState: ...

    def layer(self, index: int, name: str) -> np.ndarray | None: ...

    def commit(self, label: str, updates: dict[int, _Update], group: Hashable | None = None) -> list[tuple[int | None, Change]]: ...

    def notify(self, events: Iterable[tuple[int | None, Change]]) -> None: ...


class ModelEdits:
    """The model-driven edits of one :class:`~tnseg_desktop.engine.session.EditingSession`, which owns
    this object and the ``core`` (its shared state) it works on."""

    def __init__(self, core: SessionState) -> None:
        self.core: SessionState = core

    # -- automatic masks (heavy; worker thread) --------------------------------------
    def _auto_model_or_raise(self) -> tuple[AutoSegmenter, int]:
        s = self.core
        with s.lock:
            if s.auto_model is None:
                raise NoAutoModelError()
            return s.auto_model, s.generation

    def auto_mask(self, index: int) -> np.ndarray:
        """Replace the frame's mask with the automatic one (undoable); clears its prompts."""
        done = self.auto_mask_range([index], overwrite=True)
        if not done:
            raise UserFacingError("The segmentation model changed while the automatic mask was computed; try again.")
        m = self.core.layer(index, "mask")
        assert m is not None
        return m

    def auto_mask_range(
        self,
        frames: Iterable[int],
        progress: Progress | None = None,
        should_stop: Callable[[], bool] | None = None,
        overwrite: bool = False,
        batch_size: int = 4,
    ) -> list[int]:
        """Automatic masks for ``frames``, in batches, as one undo step when nothing else intervenes.

        Frames holding the user's work (refined, painted, accepted) keep their
        mask unless ``overwrite``; their stored automatic mask is updated.
        Returns the frames whose automatic mask was computed.
        """
        s = self.core
        order = [int(i) for i in frames]
        for i in order:
            s.check_index(i)
        group = ("auto", uuid.uuid4().hex)
        done: list[int] = []
        for start in range(0, len(order), max(1, batch_size)):
            if should_stop is not None and should_stop():
                break
            model, generation = self._auto_model_or_raise()
            chunk = order[start : start + batch_size]
            images = [s.frame(i) for i in chunk]
            probs = model.auto_probs(images)
            with s.lock:
                if generation != s.generation:
                    break
                updates = {}
                for i, p in zip(chunk, probs):
                    auto = np.asarray(p) >= s.threshold
                    st = s.state(i)
                    if overwrite or st.meta.origin not in USER_ORIGINS:
                        updates[i] = _Update(FrameMeta(origin=Origin.AUTO), {"mask": auto, "auto": auto, "base": None})
                    else:
                        updates[i] = _Update(st.meta, {"auto": auto})
                events = s.commit("automatic mask", updates, group)
            done.extend(chunk)
            s.notify(events)
            if progress is not None:
                progress(len(done), len(order))
        return done

    # -- prompts (heavy when they refine; worker thread) ------------------------------
    def _refine_commit(self, index: int, label: str, plan: Callable[[_FrameState], tuple[FrameMeta, np.ndarray | None, bool]]) -> np.ndarray | None:
        """Run the refiner outside the lock on a snapshot, commit if the frame did not change meanwhile.

        ``plan(state) -> (new meta, prior, refine?)``; when ``refine`` is False
        the new mask is ``prior`` itself (no network pass).
        """
        s = self.core
        frame = s.frame(index)
        for _ in range(_MAX_RECOMPUTES):
            with s.lock:
                st = s.state(index)
                version, generation, refiner = st.version, s.generation, s.refiner
                meta, prior, do_refine = plan(st)
                base = st.layers.get("mask") if not st.meta.has_prompts else st.layers.get("base")
                base_origin = st.meta.origin if not st.meta.has_prompts else st.meta.base_origin
                if do_refine and refiner is None:
                    raise NoRefinerError()
            new = refiner.refine(frame, prior, meta.prompts()) if do_refine else prior  # type: ignore[union-attr]
            with s.lock:
                if st.version != version or generation != s.generation:
                    continue
                if not meta.has_prompts:
                    # the prompt set is gone: the frame is back to its base mask and origin
                    meta = replace(meta, origin=base_origin, base_origin=Origin.NONE)
                    layers: dict[str, Any] = {"mask": new, "base": None}
                else:
                    meta = replace(meta, base_origin=base_origin)
                    layers = {"mask": new, "base": base}
                events = s.commit(label, {index: _Update(meta, layers)})
            s.notify(events)
            return None if new is None else np.asarray(new, dtype=bool).copy()
        raise UserFacingError("The frame kept changing while the refinement was computed; try again.")

    def add_click(self, index: int, row: int, col: int, positive: bool) -> np.ndarray:
        """Add a click and refine the current mask with all the frame's prompts."""
        h, w = self.core.shape(index)
        if not (0 <= row < h and 0 <= col < w):
            raise UserFacingError(f"The click at row {row}, column {col} is outside the {w}x{h} frame.")
        click = Click(int(row), int(col), bool(positive))

        def plan(st: _FrameState) -> tuple[FrameMeta, np.ndarray | None, bool]:
            meta = replace(st.meta, clicks=st.meta.clicks + (click,), origin=Origin.REFINED)
            return meta, st.layers.get("mask"), True

        out = self._refine_commit(index, "click", plan)
        assert out is not None
        return out

    def remove_click(self, index: int, click_index: int) -> np.ndarray | None:
        """Remove one click and recompute from the mask the prompts started from."""

        def plan(st: _FrameState) -> tuple[FrameMeta, np.ndarray | None, bool]:
            clicks = list(st.meta.clicks)
            if not 0 <= click_index < len(clicks):
                raise IndexError(f"frame {index} has {len(clicks)} clicks, no click {click_index}")
            del clicks[click_index]
            meta = replace(st.meta, clicks=tuple(clicks), origin=Origin.REFINED)
            return meta, st.layers.get("base"), meta.has_prompts

        return self._refine_commit(index, "remove click", plan)

    def set_box(self, index: int, box: Box | None) -> np.ndarray | None:
        """Set (refine inside it) or remove (recompute from the base mask) the frame's box."""
        if box is not None:
            h, w = self.core.shape(index)
            r0, c0, r1, c1 = (int(v) for v in box)
            r0, c0, r1, c1 = max(0, min(r0, r1)), max(0, min(c0, c1)), min(h, max(r0, r1)), min(w, max(c0, c1))
            if r1 - r0 < 2 or c1 - c0 < 2:
                raise UserFacingError("The box is too small; drag a box around the nodule.")
            box = (r0, c0, r1, c1)

        def plan(st: _FrameState) -> tuple[FrameMeta, np.ndarray | None, bool]:
            meta = replace(st.meta, box=box, origin=Origin.REFINED)
            if box is not None:
                return meta, st.layers.get("mask"), True
            return meta, st.layers.get("base"), meta.has_prompts

        return self._refine_commit(index, "box", plan)

    def apply_text(self, index: int, text: str) -> np.ndarray:
        """Segment what a typed phrase names; raises a one-sentence UserFacingError when it cannot."""
        phrase = " ".join(text.split())
        if not phrase:
            raise UserFacingError("Type what to segment, for example 'nodule'.")
        try:
            from tnseg_desktop.engine.text_prompt import text_to_mask
        except ImportError:
            raise TextPromptUnavailable() from None
        s = self.core
        frame = s.frame(index)
        for _ in range(_MAX_RECOMPUTES):
            with s.lock:
                st = s.state(index)
                version, generation = st.version, s.generation
                prior = st.layers.get("mask")
                refiner, clip = s.refiner, s.clip_predictor
                base = prior if not st.meta.has_prompts else st.layers.get("base")
                base_origin = st.meta.origin if not st.meta.has_prompts else st.meta.base_origin
            new = text_to_mask(frame, phrase, prior, refiner, clip)  # UserFacingError passes through as it is
            with s.lock:
                if st.version != version or generation != s.generation:
                    continue
                meta = replace(st.meta, text=phrase, origin=Origin.REFINED, base_origin=base_origin)
                events = s.commit("text", {index: _Update(meta, {"mask": new, "base": base})})
            s.notify(events)
            return np.asarray(new, dtype=bool).copy()
        raise UserFacingError("The frame kept changing while the text prompt was computed; try again.")
