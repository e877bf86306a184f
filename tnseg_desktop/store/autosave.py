"""Drafts autosave: the UI marks frames dirty on every stroke; flush() writes them.

Plain Python so it is testable without Qt: the UI's timer calls ``flush()`` every
few seconds (ideally from a worker thread, since it writes files). Accepting a
frame goes through ``accept()`` here so a pending draft older than the accepted
mask can never be written after it.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from tnseg_desktop.store.annotation_store import AnnotationStore
from tnseg_desktop.store.records import AcceptedFrame, EditInfo


class DraftAutosaver:
    def __init__(self, store: AnnotationStore, study_id: int) -> None:
        self.store = store
        self.study_id = int(study_id)
        self._pending: dict[int, tuple[np.ndarray, str]] = {}
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()

    def mark_dirty(self, frame_index: int, mask: np.ndarray, origin: str = "edit") -> None:
        """Remember the current unaccepted mask of a frame (copied; cheap, no disk access)."""
        with self._lock:
            self._pending[int(frame_index)] = (np.array(mask, copy=True), origin)

    @property
    def pending(self) -> list[int]:
        with self._lock:
            return sorted(self._pending)

    def flush(self) -> int:
        """Write every pending draft; returns how many were written. Safe to call from any thread."""
        with self._write_lock:
            with self._lock:
                batch, self._pending = self._pending, {}
            written = 0
            try:
                for frame_index, (mask, origin) in sorted(batch.items()):
                    self.store.save_draft(self.study_id, frame_index, mask, origin)
                    written += 1
            except BaseException:
                # put back what was not written, unless a newer mask arrived meanwhile
                with self._lock:
                    for frame_index, item in list(batch.items())[written:]:
                        self._pending.setdefault(frame_index, item)
                raise
            return written

    def discard(self, frame_index: int) -> None:
        """Forget a frame's draft (pending and stored), e.g. when the user reverts it."""
        with self._write_lock:
            with self._lock:
                self._pending.pop(int(frame_index), None)
            self.store.discard_draft(self.study_id, frame_index)

    def accept(self, frame_index: int, mask: np.ndarray, original_mask: np.ndarray | None = None,
               edit_info: EditInfo | None = None, **_: Any) -> AcceptedFrame:
        """Accept a frame at once (durable on return); its draft is dropped."""
        with self._write_lock:
            with self._lock:
                self._pending.pop(int(frame_index), None)
            return self.store.accept(self.study_id, frame_index, mask, original_mask, edit_info)
