"""The editing session: one cine, a mask per frame, prompts, and undo/redo.

The UI and the CLI change masks only through :class:`EditingSession`. State
lives behind one lock (in the session's :class:`SessionCore`); network passes
(auto masks, click refinement) run outside it on a snapshot and are committed
afterwards, recomputed if the frame changed in between. Listeners are plain
callbacks ``fn(frame_index, Change)`` called after the lock is released;
``frame_index`` is None for session-wide changes (refiner or model swapped).

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
    Progress,
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
from tnseg_desktop.prompts import Box

log = logging.getLogger(__name__)

Events = list[tuple[int | None, Change]]


class SessionCore:
    """The state one session's parts share, behind one lock: frames, per-frame records, the models, the
    undo history and the listeners, with the two primitives that change records (commit, apply a change).

    :class:`EditingSession` and its :class:`~tnseg_desktop.engine.model_edits.ModelEdits` both work on it.
    """

    def __init__(self, source: FrameSource, refiner: Refiner | None, auto_model: AutoSegmenter | None,
                 history: History, threshold: float) -> None:
        self.source = source
        self.threshold = threshold
        self.history = history
        self.lock = threading.RLock()
        self.states: dict[int, _FrameState] = {}
        self.shapes: dict[int, tuple[int, int]] = {}
        self.refiner = refiner
        self.auto_model = auto_model
        self.clip_predictor: Any = None
        self.generation = 0  # bumped whenever a model is swapped; in-flight results of older models are dropped
        self.listeners: list[Listener] = []

    def frame(self, index: int) -> np.ndarray:
        self.check_index(index)
        img = self.source.frame(index)
        self.shapes.setdefault(index, (int(img.shape[0]), int(img.shape[1])))
        return img

    def shape(self, index: int) -> tuple[int, int]:
        if index not in self.shapes:
            self.frame(index)
        return self.shapes[index]

    def check_index(self, index: int) -> None:
        if not 0 <= index < len(self.source):
            raise IndexError(f"frame {index} is outside 0..{len(self.source) - 1}")

    def state(self, index: int) -> _FrameState:
        st = self.states.get(index)
        if st is None:
            self.check_index(index)
            st = self.states[index] = _FrameState()
        return st

    def layer(self, index: int, name: str) -> np.ndarray | None:
        """A copy of one of the frame's layers ("mask", "auto", ...), or None."""
        with self.lock:
            m = self.state(index).layers.get(name)
            return None if m is None else m.copy()

    def notify(self, events: Iterable[tuple[int | None, Change]]) -> None:
        with self.lock:
            listeners = list(self.listeners)
        for frame_index, change in events:
            for fn in listeners:
                try:
                    fn(frame_index, change)
                except Exception:  # a broken listener must not break editing
                    log.exception("session listener failed")

    def commit(self, label: str, updates: dict[int, _Update], group: Hashable | None = None) -> Events:
        """Apply updates as one undo step; call with the lock held. Returns the events to notify."""
        changes: list[FrameChange] = []
        events: Events = []
        for index, upd in updates.items():
            st = self.state(index)
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

    def apply_change(self, change: FrameChange, forward: bool) -> tuple[int, Change]:
        """Replay one frame's part of an undo step (call with the lock held)."""
        st = self.state(change.frame)
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


class EditingSession:
    """One cine's masks, prompts and history.

    Owns a :class:`SessionCore` (the shared state and its lock) and a :class:`ModelEdits` working on that
    core (automatic masks, click/box refinement, text prompts; engine/model_edits.py); the per-frame
    records come from engine/frame_state.py.
    """

    def __init__(
        self,
        frames: FrameSource | Sequence[np.ndarray],
        refiner: Refiner | None = None,
        auto_model: AutoSegmenter | None = None,
        history_bytes: int = 64 * 1024 * 1024,
        threshold: float = 0.5,
    ) -> None:
        source: FrameSource = frames if hasattr(frames, "frame") else _ListSource(frames)  # type: ignore[arg-type]
        self._core = SessionCore(source, refiner, auto_model, History(max_bytes=history_bytes), float(threshold))
        self._model_edits = ModelEdits(self._core)

    # -- frames and read access ------------------------------------------------
    @property
    def source(self) -> FrameSource:
        return self._core.source

    @property
    def history(self) -> History:
        return self._core.history

    @property
    def threshold(self) -> float:
        return self._core.threshold

    @threshold.setter
    def threshold(self, value: float) -> None:
        self._core.threshold = float(value)

    @property
    def clip_predictor(self) -> Any:
        return self._core.clip_predictor

    def __len__(self) -> int:
        return len(self._core.source)

    def frame(self, index: int) -> np.ndarray:
        return self._core.frame(index)

    def shape(self, index: int) -> tuple[int, int]:
        return self._core.shape(index)

    def mask(self, index: int) -> np.ndarray | None:
        return self._core.layer(index, "mask")

    def auto_mask_of(self, index: int) -> np.ndarray | None:
        """The automatic model's own mask for this frame (for the store), or None."""
        return self._core.layer(index, "auto")

    def origin(self, index: int) -> Origin:
        with self._core.lock:
            return self._core.state(index).meta.origin

    def prompts(self, index: int) -> Prompts:
        with self._core.lock:
            return self._core.state(index).meta.prompts()

    def view(self, index: int) -> FrameView:
        with self._core.lock:
            st = self._core.state(index)
            m, a = st.layers.get("mask"), st.layers.get("auto")
            return FrameView(index, None if m is None else m.copy(), st.meta.origin, st.meta.prompts(), None if a is None else a.copy(), st.version)

    def origins(self) -> list[Origin]:
        """Origin of every frame, in order (for a frame strip)."""
        core = self._core
        with core.lock:
            return [core.states[i].meta.origin if i in core.states else Origin.NONE for i in range(len(core.source))]

    def frames_with(self, origin: Origin) -> list[int]:
        with self._core.lock:
            return sorted(i for i, st in self._core.states.items() if st.meta.origin is origin)

    @property
    def refiner(self) -> Refiner | None:
        return self._core.refiner

    @property
    def auto_model(self) -> AutoSegmenter | None:
        return self._core.auto_model

    # -- listeners -------------------------------------------------------------
    def subscribe(self, fn: Listener) -> Callable[[], None]:
        """Call ``fn(frame_index, change)`` after every change; returns the unsubscribe function."""
        core = self._core
        with core.lock:
            core.listeners.append(fn)

        def unsubscribe() -> None:
            with core.lock:
                if fn in core.listeners:
                    core.listeners.remove(fn)

        return unsubscribe

    # -- models ----------------------------------------------------------------
    def set_refiner(self, refiner: Refiner | None) -> None:
        core = self._core
        with core.lock:
            old, core.refiner = core.refiner, refiner
            core.generation += 1
        if old is not None and old is not refiner:
            old.invalidate()
        core.notify([(None, Change.REFINER)])

    def set_auto_model(self, segmenter: AutoSegmenter | None) -> None:
        core = self._core
        with core.lock:
            core.auto_model = segmenter
            core.generation += 1
        core.notify([(None, Change.AUTO_MODEL)])

    def set_clip_predictor(self, predictor: Any) -> None:
        """The CLIP-TNseg predictor text prompts use (None when there are no CLIP weights)."""
        core = self._core
        with core.lock:
            core.clip_predictor = predictor
            core.generation += 1

    # -- undo / redo -------------------------------------------------------------
    def undo(self) -> bool:
        core = self._core
        with core.lock:
            step = core.history.pop_undo()
            if step is None:
                return False
            events = [core.apply_change(c, forward=False) for c in reversed(step.changes)]
            core.history.push_redo(step)
        core.notify(events)
        return True

    def redo(self) -> bool:
        core = self._core
        with core.lock:
            step = core.history.pop_redo()
            if step is None:
                return False
            events = [core.apply_change(c, forward=True) for c in step.changes]
            core.history.push_undone(step)
        core.notify(events)
        return True

    @property
    def can_undo(self) -> bool:
        return self._core.history.can_undo

    @property
    def can_redo(self) -> bool:
        return self._core.history.can_redo

    # -- direct mask changes (light; GUI thread) ----------------------------------
    def _edit_mask(self, index: int, label: str, fn: Callable[[np.ndarray], np.ndarray], origin: Origin = Origin.PAINTED, group: Hashable | None = None, keep_prompts: bool = True) -> np.ndarray:
        core = self._core
        shape = core.shape(index)
        with core.lock:
            st = core.state(index)
            current = st.layers.get("mask")
            new = fn(np.zeros(shape, dtype=bool) if current is None else current)
            meta = replace(st.meta, origin=origin) if keep_prompts else FrameMeta(origin=origin)
            layers: dict[str, Any] = {"mask": new}
            if not keep_prompts:
                layers["base"] = None
            events = core.commit(label, {index: _Update(meta, layers)}, group)
        core.notify(events)
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
        core = self._core
        shape = core.shape(index)
        with core.lock:
            st = core.state(index)
            layers: dict[str, Any] = {} if "mask" in st.layers else {"mask": np.zeros(shape, dtype=bool)}
            events = core.commit("accept", {index: _Update(replace(st.meta, origin=Origin.ACCEPTED), layers)})
        core.notify(events)

    def set_mask(self, index: int, mask: np.ndarray, origin: Origin, label: str = "set mask", group: Hashable | None = None, prompts: Prompts | None = None) -> None:
        """Put a mask computed elsewhere (propagation, a script) as one undoable step."""
        core = self._core
        with core.lock:
            st = core.state(index)
            layers: dict[str, Any] = {"mask": mask}
            meta = st.meta
            if prompts is not None:
                # new prompts start a new prompt set from this mask
                meta = replace(st.meta, clicks=tuple(prompts.clicks), box=prompts.box, text=prompts.text, base_origin=Origin.NONE)
                layers["base"] = None
            events = core.commit(label, {index: _Update(replace(meta, origin=origin), layers)}, group)
        core.notify(events)

    def restore(self, index: int, mask: np.ndarray | None, origin: Origin, auto_mask: np.ndarray | None = None) -> None:
        """Load saved state (e.g. from the store) without an undo step."""
        core = self._core
        shape = core.shape(index)
        layers = {}
        for name, value in (("mask", mask), ("auto", auto_mask)):
            if value is not None:
                value = np.asarray(value).astype(bool, copy=True)
                if value.shape != shape:
                    raise ValueError(f"mask for frame {index} is {value.shape}, the frame is {shape}")
                layers[name] = value
        with core.lock:
            st = core.state(index)
            st.layers = layers
            st.meta = FrameMeta(origin=origin, has=frozenset(layers))
            st.version += 1
        core.notify([(index, Change.MASK | Change.ORIGIN | Change.PROMPTS)])

    # -- prompts ----------------------------------------------------------------
    def clear_prompts(self, index: int) -> None:
        """Forget the frame's clicks, box and text but keep its mask."""
        core = self._core
        with core.lock:
            st = core.state(index)
            meta = replace(st.meta, clicks=(), box=None, text=None)
            events = core.commit("clear prompts", {index: _Update(meta, {"base": None})})
        core.notify(events)

    # -- model-driven edits (heavy; worker thread): engine/model_edits.py --------------
    def auto_mask(self, index: int) -> np.ndarray:
        """Replace the frame's mask with the automatic one (undoable); clears its prompts."""
        return self._model_edits.auto_mask(index)

    def auto_mask_range(self, frames: Iterable[int], progress: Progress | None = None,
                        should_stop: Callable[[], bool] | None = None, overwrite: bool = False,
                        batch_size: int = 4) -> list[int]:
        """Automatic masks for ``frames`` in batches; see :meth:`ModelEdits.auto_mask_range`."""
        return self._model_edits.auto_mask_range(frames, progress, should_stop, overwrite, batch_size)

    def add_click(self, index: int, row: int, col: int, positive: bool) -> np.ndarray:
        """Add a click and refine the current mask with all the frame's prompts."""
        return self._model_edits.add_click(index, row, col, positive)

    def remove_click(self, index: int, click_index: int) -> np.ndarray | None:
        """Remove one click and recompute from the mask the prompts started from."""
        return self._model_edits.remove_click(index, click_index)

    def set_box(self, index: int, box: Box | None) -> np.ndarray | None:
        """Set (refine inside it) or remove (recompute from the base mask) the frame's box."""
        return self._model_edits.set_box(index, box)

    def apply_text(self, index: int, text: str) -> np.ndarray:
        """Segment what a typed phrase names; raises a one-sentence UserFacingError when it cannot."""
        return self._model_edits.apply_text(index, text)
