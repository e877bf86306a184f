"""The default automatic mask: the mean probability of tnseg-med and tnseg-lite.

The two networks err differently (tnseg-med reads the frozen LiteMedSAM
embedding at 64x64, tnseg-lite the pixels at its own working size), so their
mean beats either alone on ddti/val (models/README.md). tnseg-med's part
reuses the refiner's cached embedding (``set_embed``), so the ensemble costs
one encoder pass plus both heads per frame.

Only the nodule is known to tnseg-lite: a text prompt that selects another
target (the gland) is answered by tnseg-med with its earlier, conv-branch
weights (``tnseg-med-conv``): that mean scored 0.847 on TG3K frames, tnseg-med
alone 0.815 and the conv weights alone 0.836 (models/README.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

if TYPE_CHECKING:  # the names above are read by the UI and the resolver without loading torch
    import torch

ENSEMBLE = "tnseg-med+lite"
MEMBERS = ("tnseg-med", "tnseg-lite")
GLAND_PARTNER = "tnseg-med-conv"  # averaged with tnseg-med for the gland, when installed


class MeanEnsemble:
    """``AutoSegmenter`` averaging tnseg-med's and tnseg-lite's nodule probabilities."""

    name = ENSEMBLE

    def __init__(self, med: Any, lite: Any, target: str | None = None, gland: Any = None) -> None:
        self.med = med
        self.lite = lite
        self.target = target  # the nodule when None (no prompt)
        self.gland = gland  # tnseg-med-conv, conditioned like ``med``; None when not installed

    def set_embed(self, embed: Any) -> None:
        self.med.set_embed(embed)
        if self.gland is not None:
            self.gland.set_embed(embed)

    def with_condition(self, cond: torch.Tensor | None, target: str | None = None) -> "MeanEnsemble":
        """A phrase selects the target; the nodule is answered by tnseg-med's learned default, not by the
        phrase's embedding: on ddti/val the phrase "thyroid nodule" gave 0.783 against the default's 0.790
        (and 0.798 against 0.804 through SAM; bench/text_prompts.py), so for the nodule the words only choose."""
        from tnseg_desktop.model.prompt_targets import NODULE

        own = None if target == NODULE else cond
        gland = self.gland.with_condition(own) if self.gland is not None else None
        return MeanEnsemble(self.med.with_condition(own), self.lite, target, gland)

    def _lite_helps(self, target: str | None) -> bool:
        from tnseg_desktop.model.prompt_targets import NODULE

        return target is None or target == NODULE

    def auto_probs(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        med = self.med.auto_probs(frames)
        if self._lite_helps(self.target):
            return _mean(med, self.lite.auto_probs(frames))
        return med if self.gland is None else _mean(med, self.gland.auto_probs(frames))

    def target_of(self, text: str) -> str:
        return self.med.target_of(text)

    def prob_map(self, frame: np.ndarray, text: str) -> np.ndarray:
        """What ``text`` names at frame size; ``UnknownTarget`` (and no map) for a phrase naming no known target."""
        from tnseg_desktop.model.resolve import text_condition_for

        target, cond = text_condition_for(text)
        return self.with_condition(cond, target).auto_probs([frame])[0]


def _mean(a: list[np.ndarray], b: list[np.ndarray]) -> list[np.ndarray]:
    return [((x + y) / 2).astype(np.float32) for x, y in zip(a, b)]


def load_ensemble(device: torch.device, prompt: str | None = None, lite_weights: str | None = None, tta: bool = False) -> MeanEnsemble:
    """tnseg-med (conditioned on ``prompt`` when given) with tnseg-lite (``lite_weights``: the store's active
    version, or the shipped file). No flip test-time augmentation by default: with the shipped files it gains
    nothing on ddti/val (0.7740 with it, 0.7746 without) and costs a second tnseg-lite pass per frame."""
    from tnseg_desktop.model.lite_predictor import LitePredictor
    from tnseg_desktop.model.lite_weights import load_lite
    from tnseg_desktop.model.resolve import load_tnseg_med_segmenter, resolve_lite_weights, text_condition_for

    from tnseg_desktop.model import registry

    med = load_tnseg_med_segmenter(MEMBERS[0], device)
    lite = LitePredictor(load_lite(resolve_lite_weights(lite_weights or MEMBERS[1]), device), device, tta=tta)
    # a missing partner leaves the gland to tnseg-med alone; a damaged one raises its check error (never dropped silently)
    gland = load_tnseg_med_segmenter(GLAND_PARTNER, device) if registry.find_path(GLAND_PARTNER) is not None else None
    ens = MeanEnsemble(med, lite, gland=gland)
    if prompt is not None:
        target, cond = text_condition_for(prompt)
        ens = ens.with_condition(cond, target)
    return ens
