"""The one interface every refiner (tnseg-lite, SAM, MobileSAM) implements.

A refiner turns the current mask plus the user's prompts on one frame into a
new mask. Refiners that need a per-frame image embedding compute it in
``prepare`` (called ahead of time by the background precompute) and cache it;
``refine`` must then cost only the light prompt-dependent part.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from tnseg_desktop.prompts import Click

Box = tuple[int, int, int, int]  # (row0, col0, row1, col1), exclusive ends, frame pixels


@dataclass
class Prompts:
    clicks: list[Click] = field(default_factory=list)
    box: Box | None = None
    text: str | None = None


@runtime_checkable
class Refiner(Protocol):
    name: str
    needs_embedding: bool

    def prepare(self, frame: np.ndarray) -> None:
        """Compute and cache whatever depends only on the frame (may be a no-op)."""

    def is_prepared(self, frame: np.ndarray) -> bool:
        """True when ``refine`` on this frame will not compute an embedding."""

    def refine(self, frame: np.ndarray, prior: np.ndarray | None, prompts: Prompts) -> np.ndarray:
        """New boolean mask (HxW, frame resolution)."""

    def invalidate(self) -> None:
        """Drop caches (the model changed)."""


def as_clicks(points: Sequence[tuple[int, int, bool]]) -> list[Click]:
    return [Click(int(r), int(c), bool(p)) for r, c, p in points]
