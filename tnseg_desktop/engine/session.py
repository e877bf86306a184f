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

import logging
import threading
from dataclasses import replace
from typing import Any, Callable, Hashable, Iterable, Sequence

import numpy as np

from tnseg_desktop.engine import mask_ops
from tnseg_desktop.engine.frame_state import (  # noqa: F401 (USER_ORIGINS re-exported: callers import it from here)
    USER_ORIGINS,
    AutoSegmenter,
    Change,
    FrameMeta,
    FrameSource,
    FrameView,
    Listener,
    Origin,
    _FrameState,
    _KEEP,
    _ListSource,
    _Update,
)
from tnseg_desktop.engine.model_edits import (  # noqa: F401 (the errors are re-exported: callers import them from here)
    ModelEdits,
    NoAutoModelError,
    NoRefinerError,
    TextPromptUnavailable,
)
from tnseg_desktop.engine.refiner_base import Prompts, Refiner
from tnseg_desktop.engine.undo import FrameChange, History, PackedXor, Step

log = logging.getLogger(__name__)


class EditingSession(ModelEdits):
    """One cine's masks, prompts and history; the model-driven edits come from :class:`ModelEdits`
    (engine/model_edits.py), the per-frame records from engine/frame_state.py."""

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

    # -- prompts ----------------------------------------------------------------
    def clear_prompts(self, index: int) -> None:
        """Forget the frame's clicks, box and text but keep its mask."""
        with self._lock:
            st = self._state(index)
            meta = replace(st.meta, clicks=(), box=None, text=None)
            events = self._commit("clear prompts", {index: _Update(meta, {"base": None})})
        self._notify(events)

