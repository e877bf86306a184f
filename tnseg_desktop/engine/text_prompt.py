"""Text prompts: a typed phrase -> clip-tnseg probability map -> SAM prompts -> mask.

The map becomes prompts the way MedCLIP-SAMv2 turns a saliency map into
SAM prompts: threshold it, take the largest connected component's bounding
box (slightly enlarged), put positive points at the component's strongest
and most central pixels, and negative points at the peaks of the other
(weaker) components outside that box. Without a SAM refiner the thresholded
map itself is the mask.

The phrase does not use the current mask as a prompt: it names the target
afresh. Nothing above the threshold is a one-sentence error, so the caller
keeps the mask it had.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import cv2
import numpy as np

from tnseg_desktop.engine.refiner_base import Prompts
from tnseg_desktop.errors import UserFacingError
from tnseg_desktop.paths import resources_dir
from tnseg_desktop.prompts import Box, Click

CLIP_MISSING = "Text prompts need the CLIP ViT-B-16 weights, which are not installed; the other tools keep working."
DEFAULT_THRESHOLD = 0.5


class ClipWeightsMissing(UserFacingError):
    def __init__(self) -> None:
        super().__init__(CLIP_MISSING)


class NothingFound(UserFacingError):
    pass


class ProbMapPredictor(Protocol):
    def prob_map(self, frame: np.ndarray, text: str) -> np.ndarray:
        """Probability (0..1) of the phrase's structure per pixel, at frame resolution."""


class MaskRefiner(Protocol):
    def refine(self, frame: np.ndarray, prior: np.ndarray | None, prompts: Prompts) -> np.ndarray: ...


@dataclass
class MapPrompts:
    box: Box
    clicks: list[Click] = field(default_factory=list)
    component: np.ndarray | None = None  # bool HxW, the component the box was drawn around


def _peak(prob: np.ndarray, region: np.ndarray) -> tuple[int, int]:
    masked = np.where(region, prob, -np.inf)
    r, c = np.unravel_index(int(np.argmax(masked)), masked.shape)
    return int(r), int(c)


def _centre(region: np.ndarray) -> tuple[int, int]:
    dist = cv2.distanceTransform(np.pad(region.astype(np.uint8), 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
    r, c = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return int(r), int(c)


def prompts_from_prob_map(
    prob: np.ndarray,
    threshold: float = DEFAULT_THRESHOLD,
    box_margin: float = 0.05,
    max_negative: int = 2,
    min_negative_area: float = 0.1,
) -> MapPrompts | None:
    """Box and points for SAM from a probability map, or None when nothing passes the threshold.

    ``min_negative_area``: another component gets a negative point only when
    it is at least this fraction of the largest one (specks are ignored).
    """
    fg = (prob >= threshold).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    if n <= 1:
        return None
    areas = stats[1:, cv2.CC_STAT_AREA]
    order = 1 + np.argsort(-areas, kind="stable")
    main = labels == order[0]
    h, w = prob.shape
    x, y, bw, bh = (int(v) for v in stats[order[0], :4])
    mr, mc = int(round(bh * box_margin)), int(round(bw * box_margin))
    box = (max(0, y - mr), max(0, x - mc), min(h, y + bh + mr), min(w, x + bw + mc))

    clicks = [Click(*_peak(prob, main), True)]
    centre = _centre(main)
    if max(abs(centre[0] - clicks[0].row), abs(centre[1] - clicks[0].col)) > 2:
        clicks.append(Click(*centre, True))
    r0, c0, r1, c1 = box
    for k in order[1:]:
        if len([c for c in clicks if not c.positive]) >= max_negative:
            break
        if stats[k, cv2.CC_STAT_AREA] < min_negative_area * areas.max():
            continue
        pr, pc = _peak(prob, labels == k)
        if not (r0 <= pr < r1 and c0 <= pc < c1):
            clicks.append(Click(pr, pc, False))
    return MapPrompts(box=box, clicks=clicks, component=main)


def text_to_mask(
    frame: np.ndarray,
    text: str,
    prior: np.ndarray | None,
    sam_refiner: MaskRefiner | None,
    clip_predictor: ProbMapPredictor | None,
    threshold: float = DEFAULT_THRESHOLD,
) -> np.ndarray:
    """Boolean HxW mask of what ``text`` names on this frame.

    Raises ``ClipWeightsMissing`` without a clip-tnseg predictor and
    ``NothingFound`` when the map has nothing above ``threshold``.
    """
    del prior  # the phrase names the target afresh (see the module docstring)
    phrase = " ".join((text or "").split())
    if not phrase:
        raise UserFacingError("Type a phrase such as 'thyroid nodule' first.")
    if clip_predictor is None:
        raise ClipWeightsMissing()
    h, w = frame.shape[:2]
    prob = np.asarray(clip_predictor.prob_map(frame, phrase), dtype=np.float32)
    if prob.shape != (h, w):
        prob = cv2.resize(prob, (w, h), interpolation=cv2.INTER_LINEAR)
    prompts = prompts_from_prob_map(prob, threshold)
    if prompts is None:
        raise NothingFound(f"Nothing on this frame matches '{phrase}' clearly enough; try another phrase or click instead.")
    if sam_refiner is None or not _refines(sam_refiner, clip_predictor, phrase):
        return prob >= threshold
    # a refiner trained with boxes and error clicks (LiteMedSAM) gets the box alone: peak points are not what it learned
    clicks = prompts.clicks if getattr(sam_refiner, "text_points", True) else []
    mask = np.asarray(sam_refiner.refine(frame, None, Prompts(clicks=clicks, box=prompts.box, text=phrase)), dtype=bool)
    if not mask.any():  # SAM found nothing inside its prompts: the map's own component is the better answer
        assert prompts.component is not None
        return prompts.component
    return mask


def _refines(refiner: MaskRefiner, predictor: ProbMapPredictor, phrase: str) -> bool:
    """Whether the refiner was trained on what the phrase names (a refiner without ``text_targets`` refines anything).

    The thyroid refiners learnt nodules: a gland's box would come back as the nodule inside it, so the
    gland keeps the map's own mask.
    """
    targets = getattr(refiner, "text_targets", None)
    target_of = getattr(predictor, "target_of", None)
    return targets is None or target_of is None or target_of(phrase) in targets


def load_phrases() -> list[str]:
    """The suggested phrases from ``resources/prompts.txt`` (a built-in short list if it is missing)."""
    path = resources_dir() / "prompts.txt"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        lines = ["nodule", "thyroid nodule", "cystic nodule", "solid hypoechoic nodule", "calcified nodule", "thyroid gland"]
    return [s.strip() for s in lines if s.strip() and not s.lstrip().startswith("#")]


def suggest(prefix: str, limit: int = 8) -> list[str]:
    """Phrases for an autocomplete box: those starting with the typed words first, then those containing them."""
    p = " ".join(prefix.lower().split())
    phrases = load_phrases()
    if not p:
        return phrases[:limit]
    starts = [s for s in phrases if s.lower().startswith(p)]
    contains = [s for s in phrases if p in s.lower() and s not in starts]
    return (starts + contains)[:limit]


def load_clip_predictor(device: object = "cpu") -> ProbMapPredictor:
    """The clip-tnseg predictor, or ``ClipWeightsMissing`` when CLIP is not installed."""
    try:
        from tnseg_desktop.model.clip_tnseg_predictor import load_clip_tnseg_predictor
    except ImportError:
        raise ClipWeightsMissing() from None
    try:
        return load_clip_tnseg_predictor(device)  # type: ignore[no-any-return]
    except FileNotFoundError:
        raise ClipWeightsMissing() from None
