"""The editing session: one cine, a mask per frame, prompts, and undo/redo.

The UI and the CLI change masks only through :class:`EditingSession`. State
lives behind one lock; network passes (auto masks, click refinement) run
outside it on a snapshot and are committed afterwards, recomputed if the
frame changed in between. Listeners are plain callbacks
``fn(frame_index, Change)`` called after the lock is released; ``frame_index``
is None for session-wide changes (refiner or model swapped).

Per frame there are three mask layers: ``mask`` (what the user sees),
``auto`` (the automatic model's own output, kept for the store) and ``base``
(the mask the current prompt set started from: removing a click recomputes
from it).
"""

from __future__ import annotations

import enum
import logging
import threading
import uuid
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Hashable, Iterable, Protocol, Sequence

import numpy as np

from tnseg_desktop.engine import mask_ops
from tnseg_desktop.engine.refiner_base import Box, Prompts, Refiner
from tnseg_desktop.engine.undo import FrameChange, History, PackedXor, Step
from tnseg_desktop.errors import UserFacingError
from tnseg_desktop.training.clicks import Click

log = logging.getLogger(__name__)

LAYERS = ("mask", "auto", "base")
_MAX_RECOMPUTES = 3


class Origin(enum.Enum):
    NONE = "none"
    AUTO = "auto"
    REFINED = "refined"
    PAINTED = "painted"
    PROPAGATED = "propagated"
    ACCEPTED = "accepted"


# origins that hold the user's own work: bulk operations leave these frames alone
USER_ORIGINS = frozenset({Origin.REFINED, Origin.PAINTED, Origin.ACCEPTED})


class Change(enum.Flag):
    MASK = enum.auto()
    ORIGIN = enum.auto()
    PROMPTS = enum.auto()
    HISTORY = enum.auto()
    REFINER = enum.auto()
    AUTO_MODEL = enum.auto()


class NoRefinerError(UserFacingError):
    def __init__(self) -> None:
        super().__init__("No refiner is loaded, so clicks and boxes cannot change the mask; load tnseg-lite or a SAM model first.")


class NoAutoModelError(UserFacingError):
    def __init__(self) -> None:
        super().__init__("No segmentation model is loaded, so automatic masks are not available.")


class TextPromptUnavailable(UserFacingError):
    def __init__(self) -> None:
        super().__init__("Text prompts are not available in this installation; clicks, boxes and painting still work.")


class FrameSource(Protocol):
    def __len__(self) -> int: ...

    def frame(self, index: int) -> np.ndarray: ...


class AutoSegmenter(Protocol):
    def auto_probs(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]: ...


class _ListSource:
    """Adapts a plain sequence of frames to the ``frame(i)`` interface."""

    def __init__(self, frames: Sequence[np.ndarray]) -> None:
        self._frames = frames

    def __len__(self) -> int:
        return len(self._frames)

    def frame(self, index: int) -> np.ndarray:
        return self._frames[index]


@dataclass(frozen=True)
class FrameMeta:
    """The small per-frame state; immutable so history can keep it by reference."""

    origin: Origin = Origin.NONE
    clicks: tuple[Click, ...] = ()
    box: Box | None = None
    text: str | None = None
    base_origin: Origin = Origin.NONE
    has: frozenset[str] = frozenset()  # which mask layers are present

    @property
    def has_prompts(self) -> bool:
        return bool(self.clicks) or self.box is not None or self.text is not None

    def prompts(self) -> Prompts:
        return Prompts(clicks=list(self.clicks), box=self.box, text=self.text)


@dataclass
class _FrameState:
    layers: dict[str, np.ndarray] = field(default_factory=dict)
    meta: FrameMeta = field(default_factory=FrameMeta)
    version: int = 0


@dataclass(frozen=True)
class FrameView:
    """A snapshot of one frame's state for the UI (arrays are copies)."""

    index: int
    mask: np.ndarray | None
    origin: Origin
    prompts: Prompts
    auto_mask: np.ndarray | None
    version: int


_KEEP = object()  # "leave this layer as it is" in an update


@dataclass
class _Update:
    meta: FrameMeta
    layers: dict[str, Any] = field(default_factory=dict)  # layer -> array, None (remove) or _KEEP


Listener = Callable[[int | None, Change], None]
Progress = Callable[[int, int], None]


class EditingSession:
    def __init__(
        self,
        frames: FrameSource | Sequence[np.ndarray],
        refiner: Refiner | None = None,
        auto_model: AutoSegmenter | None = None,
        history_bytes: int = 64 * 1024 * 1024,
        threshold: float = 0.5,
    ) -> None:
        self.source: FrameSource = frames if hasattr(frames, "frame") else _ListSource(frames)  # type: ignore[arg-type]
        self.threshold = float(threshold)
        self.history = History(max_bytes=history_bytes)
        self._lock = threading.RLock()
        self._states: dict[int, _FrameState] = {}
        self._shapes: dict[int, tuple[int, int]] = {}
        self._refiner = refiner
        self._auto_model = auto_model
        self._generation = 0  # bumped whenever a model is swapped; in-flight results of older models are dropped
        self.clip_predictor: Any = None
        self._listeners: list[Listener] = []

    # -- frames and read access ------------------------------------------------
    def __len__(self) -> int:
        return len(self.source)

    def frame(self, index: int) -> np.ndarray:
        self._check_index(index)
        img = self.source.frame(index)
        self._shapes.setdefault(index, (int(img.shape[0]), int(img.shape[1])))
        return img

    def shape(self, index: int) -> tuple[int, int]:
        if index not in self._shapes:
            self.frame(index)
        return self._shapes[index]

    def _check_index(self, index: int) -> None:
        if not 0 <= index < len(self.source):
            raise IndexError(f"frame {index} is outside 0..{len(self.source) - 1}")

    def _state(self, index: int) -> _FrameState:
        st = self._states.get(index)
        if st is None:
            self._check_index(index)
            st = self._states[index] = _FrameState()
        return st

    def mask(self, index: int) -> np.ndarray | None:
        with self._lock:
            m = self._state(index).layers.get("mask")
            return None if m is None else m.copy()

    def auto_mask_of(self, index: int) -> np.ndarray | None:
        """The automatic model's own mask for this frame (for the store), or None."""
        with self._lock:
            m = self._state(index).layers.get("auto")
            return None if m is None else m.copy()

    def origin(self, index: int) -> Origin:
        with self._lock:
            return self._state(index).meta.origin

    def prompts(self, index: int) -> Prompts:
        with self._lock:
            return self._state(index).meta.prompts()

    def view(self, index: int) -> FrameView:
        with self._lock:
            st = self._state(index)
            m, a = st.layers.get("mask"), st.layers.get("auto")
            return FrameView(index, None if m is None else m.copy(), st.meta.origin, st.meta.prompts(), None if a is None else a.copy(), st.version)

    def origins(self) -> list[Origin]:
        """Origin of every frame, in order (for a frame strip)."""
        with self._lock:
            return [self._states[i].meta.origin if i in self._states else Origin.NONE for i in range(len(self.source))]

    def frames_with(self, origin: Origin) -> list[int]:
        with self._lock:
            return sorted(i for i, st in self._states.items() if st.meta.origin is origin)

    @property
    def refiner(self) -> Refiner | None:
        return self._refiner

    @property
    def auto_model(self) -> AutoSegmenter | None:
        return self._auto_model

    # -- listeners -------------------------------------------------------------
    def subscribe(self, fn: Listener) -> Callable[[], None]:
        """Call ``fn(frame_index, change)`` after every change; returns the unsubscribe function."""
        with self._lock:
            self._listeners.append(fn)

        def unsubscribe() -> None:
            with self._lock:
                if fn in self._listeners:
                    self._listeners.remove(fn)

        return unsubscribe

    def _notify(self, events: Iterable[tuple[int | None, Change]]) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for frame_index, change in events:
            for fn in listeners:
                try:
                    fn(frame_index, change)
                except Exception:  # a broken listener must not break editing
                    log.exception("session listener failed")

    # -- models ----------------------------------------------------------------
    def set_refiner(self, refiner: Refiner | None) -> None:
        with self._lock:
            old, self._refiner = self._refiner, refiner
            self._generation += 1
        if old is not None and old is not refiner:
            old.invalidate()
        self._notify([(None, Change.REFINER)])

    def set_auto_model(self, segmenter: AutoSegmenter | None) -> None:
        with self._lock:
            self._auto_model = segmenter
            self._generation += 1
        self._notify([(None, Change.AUTO_MODEL)])

    def set_clip_predictor(self, predictor: Any) -> None:
        """The CLIP-TNseg predictor text prompts use (None when there are no CLIP weights)."""
        with self._lock:
            self.clip_predictor = predictor
            self._generation += 1

    # -- committing ------------------------------------------------------------
    def _commit(self, label: str, updates: dict[int, _Update], group: Hashable | None = None) -> list[tuple[int | None, Change]]:
        """Apply updates as one undo step; call with the lock held. Returns the events to notify."""
        changes: list[FrameChange] = []
        events: list[tuple[int | None, Change]] = []
        for index, upd in updates.items():
            st = self._state(index)
            xors: dict[str, PackedXor] = {}
            new_layers = dict(st.layers)
            for name, value in upd.layers.items():
                if value is _KEEP:
                    continue
                old = st.layers.get(name)
                if value is None:
                    new_layers.pop(name, None)
                    if old is not None:
                        x = PackedXor.between(old, np.zeros_like(old))
                        if x is not None:
                            xors[name] = x
                    continue
                value = np.asarray(value).astype(bool, copy=True)
                if value.shape != self.shape(index):
                    raise ValueError(f"mask for frame {index} is {value.shape}, the frame is {self.shape(index)}")
                x = PackedXor.between(np.zeros_like(value) if old is None else old, value)
                if x is not None:
                    xors[name] = x
                new_layers[name] = value
            meta = replace(upd.meta, has=frozenset(new_layers))
            if not xors and meta == st.meta:
                continue
            changes.append(FrameChange(index, xors, st.meta, meta))
            what = Change(0)
            if "mask" in xors:
                what |= Change.MASK
            if meta.origin != st.meta.origin:
                what |= Change.ORIGIN
            if (meta.clicks, meta.box, meta.text) != (st.meta.clicks, st.meta.box, st.meta.text):
                what |= Change.PROMPTS
            st.layers, st.meta = new_layers, meta
            st.version += 1
            events.append((index, what | Change.HISTORY))
        if changes:
            self.history.push(Step(label, changes, group))
        return events

    def _apply_change(self, change: FrameChange, forward: bool) -> tuple[int, Change]:
        st = self._state(change.frame)
        layers = dict(st.layers)
        for name, x in change.layers.items():
            current = layers.get(name)
            layers[name] = x.apply(np.zeros(x.shape, dtype=bool) if current is None else current)
        meta = change.meta_after if forward else change.meta_before
        for name in meta.has:
            if name not in layers:  # an all-empty layer has no diff to rebuild it from
                layers[name] = np.zeros(self.shape(change.frame), dtype=bool)
        st.layers = {k: v for k, v in layers.items() if k in meta.has}
        st.meta = meta
        st.version += 1
        return change.frame, Change.MASK | Change.ORIGIN | Change.PROMPTS | Change.HISTORY

    def undo(self) -> bool:
        with self._lock:
            step = self.history.pop_undo()
            if step is None:
                return False
            events = [self._apply_change(c, forward=False) for c in reversed(step.changes)]
            self.history.push_redo(step)
        self._notify(events)
        return True

    def redo(self) -> bool:
        with self._lock:
            step = self.history.pop_redo()
            if step is None:
                return False
            events = [self._apply_change(c, forward=True) for c in step.changes]
            self.history.push_undone(step)
        self._notify(events)
        return True

    @property
    def can_undo(self) -> bool:
        return self.history.can_undo

    @property
    def can_redo(self) -> bool:
        return self.history.can_redo

    # -- direct mask changes (light; GUI thread) ----------------------------------
    def _edit_mask(self, index: int, label: str, fn: Callable[[np.ndarray], np.ndarray], origin: Origin = Origin.PAINTED, group: Hashable | None = None, keep_prompts: bool = True) -> np.ndarray:
        shape = self.shape(index)
        with self._lock:
            st = self._state(index)
            current = st.layers.get("mask")
            new = fn(np.zeros(shape, dtype=bool) if current is None else current)
            meta = replace(st.meta, origin=origin) if keep_prompts else FrameMeta(origin=origin)
            layers: dict[str, Any] = {"mask": new}
            if not keep_prompts:
                layers["base"] = None
            events = self._commit(label, {index: _Update(meta, layers)}, group)
        self._notify(events)
        return new.copy()

    def paint_disc(self, index: int, row: int, col: int, radius: int, group: Hashable | None = None) -> np.ndarray:
        """``group``: steps with the same group token in a row merge into one undo step (a live stroke)."""
        return self._edit_mask(index, "paint", lambda m: mask_ops.paint(m, [(row, col)], radius), group=group)

    def erase_disc(self, index: int, row: int, col: int, radius: int, group: Hashable | None = None) -> np.ndarray:
        return self._edit_mask(index, "erase", lambda m: mask_ops.erase(m, [(row, col)], radius), group=group)

    def paint_stroke(self, index: int, points: Sequence[tuple[int, int]], radius: int, group: Hashable | None = None) -> np.ndarray:
        return self._edit_mask(index, "paint", lambda m: mask_ops.paint(m, points, radius), group=group)

    def erase_stroke(self, index: int, points: Sequence[tuple[int, int]], radius: int, group: Hashable | None = None) -> np.ndarray:
        return self._edit_mask(index, "erase", lambda m: mask_ops.erase(m, points, radius), group=group)

    def fill_holes(self, index: int) -> np.ndarray:
        return self._edit_mask(index, "fill holes", mask_ops.fill_holes)

    def keep_largest_component(self, index: int) -> np.ndarray:
        return self._edit_mask(index, "keep largest", mask_ops.largest_component)

    def clear(self, index: int) -> np.ndarray:
        """An empty mask (an explicit "no nodule here") and no prompts."""
        return self._edit_mask(index, "clear", mask_ops.cleared, keep_prompts=False)

    def accept(self, index: int) -> None:
        """Mark the frame's mask as reviewed (an absent mask is accepted as empty)."""
        shape = self.shape(index)
        with self._lock:
            st = self._state(index)
            layers: dict[str, Any] = {} if "mask" in st.layers else {"mask": np.zeros(shape, dtype=bool)}
            events = self._commit("accept", {index: _Update(replace(st.meta, origin=Origin.ACCEPTED), layers)})
        self._notify(events)

    def set_mask(self, index: int, mask: np.ndarray, origin: Origin, label: str = "set mask", group: Hashable | None = None, prompts: Prompts | None = None) -> None:
        """Put a mask computed elsewhere (propagation, a script) as one undoable step."""
        with self._lock:
            st = self._state(index)
            layers: dict[str, Any] = {"mask": mask}
            meta = st.meta
            if prompts is not None:
                # new prompts start a new prompt set from this mask
                meta = replace(st.meta, clicks=tuple(prompts.clicks), box=prompts.box, text=prompts.text, base_origin=Origin.NONE)
                layers["base"] = None
            events = self._commit(label, {index: _Update(replace(meta, origin=origin), layers)}, group)
        self._notify(events)

    def restore(self, index: int, mask: np.ndarray | None, origin: Origin, auto_mask: np.ndarray | None = None) -> None:
        """Load saved state (e.g. from the store) without an undo step."""
        shape = self.shape(index)
        layers = {}
        for name, value in (("mask", mask), ("auto", auto_mask)):
            if value is not None:
                value = np.asarray(value).astype(bool, copy=True)
                if value.shape != shape:
                    raise ValueError(f"mask for frame {index} is {value.shape}, the frame is {shape}")
                layers[name] = value
        with self._lock:
            st = self._state(index)
            st.layers = layers
            st.meta = FrameMeta(origin=origin, has=frozenset(layers))
            st.version += 1
        self._notify([(index, Change.MASK | Change.ORIGIN | Change.PROMPTS)])

    # -- automatic masks (heavy; worker thread) --------------------------------------
    def _auto_model_or_raise(self) -> tuple[AutoSegmenter, int]:
        with self._lock:
            if self._auto_model is None:
                raise NoAutoModelError()
            return self._auto_model, self._generation

    def auto_mask(self, index: int) -> np.ndarray:
        """Replace the frame's mask with the automatic one (undoable); clears its prompts."""
        done = self.auto_mask_range([index], overwrite=True)
        if not done:
            raise UserFacingError("The segmentation model changed while the automatic mask was computed; try again.")
        m = self.mask(index)
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
        order = [int(i) for i in frames]
        for i in order:
            self._check_index(i)
        group = ("auto", uuid.uuid4().hex)
        done: list[int] = []
        for start in range(0, len(order), max(1, batch_size)):
            if should_stop is not None and should_stop():
                break
            model, generation = self._auto_model_or_raise()
            chunk = order[start : start + batch_size]
            images = [self.frame(i) for i in chunk]
            probs = model.auto_probs(images)
            with self._lock:
                if generation != self._generation:
                    break
                updates = {}
                for i, p in zip(chunk, probs):
                    auto = np.asarray(p) >= self.threshold
                    st = self._state(i)
                    if overwrite or st.meta.origin not in USER_ORIGINS:
                        updates[i] = _Update(FrameMeta(origin=Origin.AUTO), {"mask": auto, "auto": auto, "base": None})
                    else:
                        updates[i] = _Update(st.meta, {"auto": auto})
                events = self._commit("automatic mask", updates, group)
            done.extend(chunk)
            self._notify(events)
            if progress is not None:
                progress(len(done), len(order))
        return done

    # -- prompts (heavy when they refine; worker thread) ------------------------------
    def _refine_commit(self, index: int, label: str, plan: Callable[[_FrameState], tuple[FrameMeta, np.ndarray | None, bool]]) -> np.ndarray | None:
        """Run the refiner outside the lock on a snapshot, commit if the frame did not change meanwhile.

        ``plan(state) -> (new meta, prior, refine?)``; when ``refine`` is False
        the new mask is ``prior`` itself (no network pass).
        """
        frame = self.frame(index)
        for _ in range(_MAX_RECOMPUTES):
            with self._lock:
                st = self._state(index)
                version, generation, refiner = st.version, self._generation, self._refiner
                meta, prior, do_refine = plan(st)
                base = st.layers.get("mask") if not st.meta.has_prompts else st.layers.get("base")
                base_origin = st.meta.origin if not st.meta.has_prompts else st.meta.base_origin
                if do_refine and refiner is None:
                    raise NoRefinerError()
            new = refiner.refine(frame, prior, meta.prompts()) if do_refine else prior  # type: ignore[union-attr]
            with self._lock:
                if st.version != version or generation != self._generation:
                    continue
                if not meta.has_prompts:
                    # the prompt set is gone: the frame is back to its base mask and origin
                    meta = replace(meta, origin=base_origin, base_origin=Origin.NONE)
                    layers: dict[str, Any] = {"mask": new, "base": None}
                else:
                    meta = replace(meta, base_origin=base_origin)
                    layers = {"mask": new, "base": base}
                events = self._commit(label, {index: _Update(meta, layers)})
            self._notify(events)
            return None if new is None else np.asarray(new, dtype=bool).copy()
        raise UserFacingError("The frame kept changing while the refinement was computed; try again.")

    def add_click(self, index: int, row: int, col: int, positive: bool) -> np.ndarray:
        """Add a click and refine the current mask with all the frame's prompts."""
        h, w = self.shape(index)
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
            h, w = self.shape(index)
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

    def clear_prompts(self, index: int) -> None:
        """Forget the frame's clicks, box and text but keep its mask."""
        with self._lock:
            st = self._state(index)
            meta = replace(st.meta, clicks=(), box=None, text=None)
            events = self._commit("clear prompts", {index: _Update(meta, {"base": None})})
        self._notify(events)

    def apply_text(self, index: int, text: str) -> np.ndarray:
        """Segment what a typed phrase names; raises a one-sentence UserFacingError when it cannot."""
        phrase = " ".join(text.split())
        if not phrase:
            raise UserFacingError("Type what to segment, for example 'nodule'.")
        try:
            from tnseg_desktop.engine.text_prompt import text_to_mask
        except ImportError:
            raise TextPromptUnavailable() from None
        frame = self.frame(index)
        for _ in range(_MAX_RECOMPUTES):
            with self._lock:
                st = self._state(index)
                version, generation = st.version, self._generation
                prior = st.layers.get("mask")
                refiner, clip = self._refiner, self.clip_predictor
                base = prior if not st.meta.has_prompts else st.layers.get("base")
                base_origin = st.meta.origin if not st.meta.has_prompts else st.meta.base_origin
            new = text_to_mask(frame, phrase, prior, refiner, clip)  # UserFacingError passes through as it is
            with self._lock:
                if st.version != version or generation != self._generation:
                    continue
                meta = replace(st.meta, text=phrase, origin=Origin.REFINED, base_origin=base_origin)
                events = self._commit("text", {index: _Update(meta, {"mask": new, "base": base})})
            self._notify(events)
            return np.asarray(new, dtype=bool).copy()
        raise UserFacingError("The frame kept changing while the text prompt was computed; try again.")
