"""Two refiners as one: a box goes to one (LiteMedSAM), the clicks that follow to the other (tnseg-lite) with that mask as prior.

issue 15 asks to measure this against LiteMedSAM alone; whichever needs fewer
clicks on ddti/val is the default (the figures are in models/README.md).
"""

from __future__ import annotations

import numpy as np

from tnseg_desktop.engine.refiner_base import Prompts, Refiner


class HybridRefiner:
    needs_embedding = True

    def __init__(self, box_refiner: Refiner, click_refiner: Refiner, name: str = "litemedsam+tnseg-lite") -> None:
        self.box_refiner = box_refiner
        self.click_refiner = click_refiner
        self.name = name
        self.text_targets = ("nodule",)  # its clicks are tnseg-lite's, trained on nodules only

    def prepare(self, frame: np.ndarray) -> None:
        self.box_refiner.prepare(frame)
        self.click_refiner.prepare(frame)

    def is_prepared(self, frame: np.ndarray) -> bool:
        return self.box_refiner.is_prepared(frame) and self.click_refiner.is_prepared(frame)

    def invalidate(self) -> None:
        self.box_refiner.invalidate()
        self.click_refiner.invalidate()

    def refine(self, frame: np.ndarray, prior: np.ndarray | None, prompts: Prompts) -> np.ndarray:
        if prompts.box is not None and not prompts.clicks:
            return self.box_refiner.refine(frame, None, Prompts(box=prompts.box))
        return self.click_refiner.refine(frame, prior, prompts)
