"""The automatic mask polished by SAM: the box of its largest piece, answered by the box tool's LiteMedSAM.

The default map (tnseg-med+lite) finds the nodule well and outlines it less
well; LiteMedSAM given a box outlines well (Dice 0.90 on ddti/val from a box
of the true mask). So the map's largest component, boxed with a 5 % margin
(``text_prompt.prompts_from_prob_map``, the same rule text prompts use), goes
to the box refiner, whose logits become the automatic mask's probabilities:
ddti/val 0.790 -> 0.804 (models/README.md). The box refiner reads the frame's
cached embedding, so the polish costs one decoder pass per frame.

The out-of-range check still judges the map (``judged_probs``): its bounds
were measured on maps, and whether a frame is like the training frames does
not change with the outline drawn on it. A frame whose map has no piece is
left as the map says.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from tnseg_desktop.engine.refiner_base import Prompts
from tnseg_desktop.engine.text_prompt import prompts_from_prob_map


class SamPolished:
    """``AutoSegmenter``: ``inner``'s map, outlined again by ``sam`` (a ``SamRefiner``) from its largest piece's box."""

    def __init__(self, inner: Any, sam: Any) -> None:
        self.inner = inner
        self.sam = sam
        self.name = inner.name
        self.polisher = getattr(sam, "name", "SAM")

    def __getattr__(self, name: str) -> Any:
        # set_embed and the text prompts (prob_map, with_condition, ...) are the map's own; text is refined by its own path
        return getattr(self.inner, name)

    def judged_probs(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The unpolished maps: what the out-of-range bounds were measured on."""
        return list(self.inner.auto_probs(frames))

    def auto_probs(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        return [self.polish(f, p) for f, p in zip(frames, self.inner.auto_probs(frames))]

    def polish(self, frame: np.ndarray, prob: np.ndarray) -> np.ndarray:
        found = prompts_from_prob_map(prob)
        if found is None:
            return prob
        pred = self.sam.predict(frame, None, Prompts(box=found.box), multimask=False)
        if pred is None:
            return prob
        return (1.0 / (1.0 + np.exp(-np.clip(pred.logits, -30, 30)))).astype(np.float32)


def box_refiner_of(refiner: Any) -> Any | None:
    """The SAM refiner that answers a box in ``refiner`` (itself, or a hybrid's box part), or None."""
    from tnseg_desktop.engine.sam_refiner import SamRefiner

    for candidate in (refiner, getattr(refiner, "box_refiner", None)):
        if isinstance(candidate, SamRefiner):
            return candidate
    return None


def probs_for_range_check(model: Any, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
    """What the out-of-range rule reads for ``model``: the unpolished map when it is polished."""
    judged = getattr(model, "judged_probs", None)
    return list(judged(frames)) if callable(judged) else list(model.auto_probs(frames))


def polished_if_default(seg: Any, name: str, device: Any, prompt: str | None = None, refiner: Any = None) -> Any:
    """``seg`` polished when it is the default pair answering the nodule with no text (the only case measured to
    gain); ``refiner``: the box refiner to use (default: litemedsam-thyroid, sharing its embeddings with ``seg``)."""
    from tnseg_desktop.model.resolve import is_ensemble

    if not is_ensemble(name) or prompt is not None:
        return seg
    if refiner is None:
        from tnseg_desktop.engine.embedding_cache import EmbeddingCache
        from tnseg_desktop.engine.litemedsam_refiner import make_litemedsam_refiner, stock_embedding_of
        from tnseg_desktop.model import litemedsam as lms

        refiner = make_litemedsam_refiner(lms.LITEMEDSAM_THYROID, device, cache=EmbeddingCache(max_bytes=512 * 1024**2))
        if hasattr(seg, "set_embed"):
            seg.set_embed(stock_embedding_of(refiner))
    return SamPolished(seg, refiner)
