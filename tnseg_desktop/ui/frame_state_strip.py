"""A thin strip above the frame slider: one coloured cell per frame showing its annotation state."""

from __future__ import annotations

import enum
from typing import Sequence

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent
from PySide6.QtWidgets import QSizePolicy, QWidget


class FrameState(enum.Enum):
    NOTHING = "no mask"
    AUTO = "automatic mask"
    EDITED = "edited, not accepted"
    REVIEW = "propagated, to review"
    ACCEPTED = "accepted"


COLOURS = {
    FrameState.NOTHING: "#2b3036",
    FrameState.AUTO: "#5b7a99",
    FrameState.EDITED: "#e0a03c",
    FrameState.REVIEW: "#b07cd8",
    FrameState.ACCEPTED: "#4fb477",
}


def state_for_origin(origin_value: str) -> FrameState:
    """Map an engine ``Origin`` value to what the strip shows."""
    return {
        "none": FrameState.NOTHING,
        "auto": FrameState.AUTO,
        "refined": FrameState.EDITED,
        "painted": FrameState.EDITED,
        "propagated": FrameState.REVIEW,
        "accepted": FrameState.ACCEPTED,
    }.get(origin_value, FrameState.NOTHING)


class FrameStateStrip(QWidget):
    frame_clicked = Signal(int)

    # the slider's handle is 12 px wide: its centre travels from 6 px to width - 6 px
    INSET = 6

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("FrameStateStrip")
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setFixedHeight(8)
        self._states: list[FrameState] = []
        self._current = -1
        self._update_tooltip()

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(200, 8)

    def set_count(self, n: int) -> None:
        self._states = [FrameState.NOTHING] * n
        self._current = -1
        self.update()

    def set_states(self, states: Sequence[FrameState]) -> None:
        self._states = list(states)
        self.update()
        self._update_tooltip()

    def set_state(self, index: int, state: FrameState) -> None:
        if 0 <= index < len(self._states) and self._states[index] is not state:
            self._states[index] = state
            self.update(self._cell(index).toAlignedRect().adjusted(-1, 0, 1, 0))
            self._update_tooltip()

    def states(self) -> list[FrameState]:
        return list(self._states)

    def set_current(self, index: int) -> None:
        self._current = index

    def _update_tooltip(self) -> None:
        counts = {s: 0 for s in FrameState}
        for s in self._states:
            counts[s] += 1
        lines = [f"{counts[s]} {s.value}" for s in FrameState if counts[s]] or ["no frames"]
        self.setToolTip("Frame states: " + ", ".join(lines))

    def _cell(self, index: int) -> QRectF:
        n = max(1, len(self._states))
        span = max(1.0, self.width() - 2 * self.INSET)
        if n == 1:
            return QRectF(self.INSET, 1, span, self.height() - 2)
        w = span / (n - 1)
        x = self.INSET + index * w - w / 2
        return QRectF(x, 1, w, self.height() - 2)

    def index_at(self, x: float) -> int:
        n = len(self._states)
        if n <= 1:
            return 0
        span = max(1.0, self.width() - 2 * self.INSET)
        return max(0, min(n - 1, round((x - self.INSET) / span * (n - 1))))

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(COLOURS[FrameState.NOTHING]).darker(130))
        clip = QRectF(self.INSET - 6, 0, self.width() - 2 * self.INSET + 12, self.height())
        for i, s in enumerate(self._states):
            if s is FrameState.NOTHING:
                continue
            p.fillRect(self._cell(i).intersected(clip), QColor(COLOURS[s]))
        p.end()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.LeftButton and self._states:
            self.frame_clicked.emit(self.index_at(event.position().x()))
