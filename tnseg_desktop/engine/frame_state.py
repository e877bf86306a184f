"""What the editing session keeps per frame: origins, change flags, the per-frame records and the sources it reads.

Per frame there are three mask layers: ``mask`` (what the user sees),
``auto`` (the automatic model's own output, kept for the store) and ``base``
(the mask the current prompt set started from: removing a click recomputes
from it).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from tnseg_desktop.engine.refiner_base import Prompts
from tnseg_desktop.prompts import Box, Click

LAYERS = ("mask", "auto", "base")


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
