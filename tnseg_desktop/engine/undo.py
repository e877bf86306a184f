"""Undo/redo history as compact, self-inverse diffs with a memory budget.

A mask change is stored as the XOR of before and after, cropped to the
XOR's bounding box and bit-packed; applying the same XOR again undoes it, so
one record serves both undo and redo. Everything else about a frame (origin,
prompts) is small and stored as before/after values. When the history grows
past its byte budget the oldest steps are dropped.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Hashable

import numpy as np

# rough per-record overhead of the Python objects, so a flood of tiny steps is bounded too
_RECORD_OVERHEAD_BYTES = 200


@dataclass(frozen=True)
class PackedXor:
    """Bit-packed XOR of two equally shaped masks, cropped to where they differ."""

    shape: tuple[int, int]
    box: tuple[int, int, int, int]  # (row0, col0, row1, col1), exclusive ends
    bits: bytes

    @staticmethod
    def between(before: np.ndarray, after: np.ndarray) -> "PackedXor | None":
        """None when the masks are equal."""
        if before.shape != after.shape:
            raise ValueError(f"mask shapes differ: {before.shape} vs {after.shape}")
        xor = np.logical_xor(before, after)
        rows = np.flatnonzero(xor.any(axis=1))
        if rows.size == 0:
            return None
        cols = np.flatnonzero(xor.any(axis=0))
        r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        bits = np.packbits(xor[r0:r1, c0:c1], axis=None).tobytes()
        return PackedXor((int(before.shape[0]), int(before.shape[1])), (r0, c0, r1, c1), bits)

    def apply(self, mask: np.ndarray) -> np.ndarray:
        """A new mask: ``mask`` with this XOR applied."""
        if mask.shape != self.shape:
            raise ValueError(f"diff is for a {self.shape} mask, got {mask.shape}")
        r0, c0, r1, c1 = self.box
        count = (r1 - r0) * (c1 - c0)
        patch = np.unpackbits(np.frombuffer(self.bits, dtype=np.uint8), count=count).astype(bool).reshape(r1 - r0, c1 - c0)
        out = mask.astype(bool, copy=True)
        out[r0:r1, c0:c1] ^= patch
        return out

    @property
    def nbytes(self) -> int:
        return len(self.bits)


@dataclass
class FrameChange:
    """What one step did to one frame: XORs per mask layer, and the small state before/after."""

    frame: int
    layers: dict[str, PackedXor] = field(default_factory=dict)
    meta_before: Any = None
    meta_after: Any = None

    @property
    def nbytes(self) -> int:
        return _RECORD_OVERHEAD_BYTES + sum(x.nbytes for x in self.layers.values())


@dataclass
class Step:
    label: str
    changes: list[FrameChange]
    group: Hashable | None = None

    @property
    def nbytes(self) -> int:
        return _RECORD_OVERHEAD_BYTES + sum(c.nbytes for c in self.changes)

    @property
    def frames(self) -> list[int]:
        return sorted({c.frame for c in self.changes})


class History:
    """Undo and redo stacks of :class:`Step`; thread-safe on its own."""

    def __init__(self, max_bytes: int = 64 * 1024 * 1024, max_steps: int = 10_000) -> None:
        self.max_bytes = int(max_bytes)
        self.max_steps = int(max_steps)
        self._undo: list[Step] = []
        self._redo: list[Step] = []
        self._bytes = 0
        self._lock = threading.Lock()

    def push(self, step: Step) -> None:
        """Record a new step (clears redo). Adjacent steps with the same non-None group merge."""
        if not step.changes:
            return
        with self._lock:
            self._redo.clear()
            top = self._undo[-1] if self._undo else None
            if step.group is not None and top is not None and top.group == step.group:
                top.changes.extend(step.changes)
                self._bytes += sum(c.nbytes for c in step.changes)
            else:
                self._undo.append(step)
                self._bytes += step.nbytes
            self._trim()

    def pop_undo(self) -> Step | None:
        with self._lock:
            if not self._undo:
                return None
            step = self._undo.pop()
            self._bytes -= step.nbytes
            return step

    def push_redo(self, step: Step) -> None:
        with self._lock:
            self._redo.append(step)

    def pop_redo(self) -> Step | None:
        with self._lock:
            return self._redo.pop() if self._redo else None

    def push_undone(self, step: Step) -> None:
        """Put a redone step back on the undo stack without clearing redo."""
        with self._lock:
            self._undo.append(step)
            self._bytes += step.nbytes
            self._trim()

    def clear(self) -> None:
        with self._lock:
            self._undo.clear()
            self._redo.clear()
            self._bytes = 0

    def _trim(self) -> None:
        # the newest step always stays, even when it alone is over budget
        while len(self._undo) > 1 and (self._bytes > self.max_bytes or len(self._undo) > self.max_steps):
            dropped = self._undo.pop(0)
            self._bytes -= dropped.nbytes

    @property
    def undo_bytes(self) -> int:
        with self._lock:
            return self._bytes

    @property
    def can_undo(self) -> bool:
        with self._lock:
            return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        with self._lock:
            return bool(self._redo)

    @property
    def undo_label(self) -> str | None:
        with self._lock:
            return self._undo[-1].label if self._undo else None

    @property
    def redo_label(self) -> str | None:
        with self._lock:
            return self._redo[-1].label if self._redo else None

    def __len__(self) -> int:
        with self._lock:
            return len(self._undo)
