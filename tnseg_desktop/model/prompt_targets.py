"""Which structure a typed phrase asks for: nearest neighbour among paraphrase lists of the known targets and of other anatomy.

Raw cosine similarity to "thyroid nodule" does not separate on-target
paraphrases ("hypoechoic mass" 0.16) from off-target anatomy ("liver" 0.29),
DESIGN.md section 2. So a phrase is compared with every paraphrase of every
known target *and* of structures the models do not segment; it selects the
target of its nearest paraphrase when that neighbour is a target's and close
enough, and nothing otherwise (with one sentence saying what is known).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from tnseg_desktop.errors import UserFacingError
from tnseg_desktop.model.text_encoder import TextEncoder, normalise_phrase

NODULE, GLAND = "nodule", "gland"

# the phrases training draws from (the held-back test list lives in the tests, never here)
TARGET_PHRASES: dict[str, tuple[str, ...]] = {
    NODULE: (
        "nodule", "thyroid nodule", "a thyroid nodule", "the nodule", "lesion", "thyroid lesion", "hypoechoic nodule",
        "hypoechoic mass", "cystic nodule", "solid nodule", "calcified nodule", "nodule with calcifications",
        "isoechoic nodule", "hyperechoic nodule", "mixed cystic and solid nodule", "mass", "thyroid mass", "tumour",
        "tumor", "thyroid tumor", "focal lesion", "suspicious nodule", "benign nodule", "malignant nodule", "cyst",
        "spongiform nodule", "TI-RADS nodule", "lump in the thyroid",
    ),
    GLAND: (
        "thyroid gland", "thyroid", "the thyroid", "thyroid lobe", "the thyroid lobe", "left thyroid lobe",
        "right thyroid lobe", "thyroid parenchyma", "whole thyroid", "gland", "the gland", "thyroid tissue",
        "thyroid outline", "isthmus and lobe",
    ),
}
TARGET_TITLES = {NODULE: "thyroid nodule", GLAND: "thyroid gland"}
# structures seen in neck ultrasound (and beyond) that no model here segments
OTHER_PHRASES: tuple[str, ...] = (
    "carotid artery", "jugular vein", "internal jugular vein", "trachea", "oesophagus", "esophagus", "muscle",
    "strap muscles", "sternocleidomastoid muscle", "lymph node", "parathyroid gland", "skin", "fat", "blood vessel",
    "liver", "kidney", "spleen", "heart", "lung", "bone", "brain", "breast", "prostate", "bladder", "uterus", "ovary",
    "fetus", "placenta", "gallbladder", "pancreas", "stomach", "colon", "eye", "background", "air", "text", "ruler",
    "banana", "car", "dog", "cat", "house", "tree", "person", "hand", "nothing", "everything", "image",
)
MIN_SIMILARITY = 0.45  # below this even the nearest target paraphrase is too far to trust


class UnknownTarget(UserFacingError):
    pass


@dataclass(frozen=True)
class TargetMatch:
    target: str | None  # None: the phrase asks for nothing this model segments
    nearest: str  # the nearest known phrase
    similarity: float


class TargetLookup:
    """Nearest-neighbour lookup of a phrase among target and off-target paraphrases."""

    def __init__(self, encoder: TextEncoder, targets: Sequence[str] = (NODULE, GLAND)) -> None:
        self.encoder = encoder
        self.targets = tuple(targets)
        self.phrases: list[str] = []
        self.labels: list[str | None] = []
        for t in self.targets:
            for p in TARGET_PHRASES[t]:
                self.phrases.append(p)
                self.labels.append(t)
        for p in OTHER_PHRASES:
            self.phrases.append(p)
            self.labels.append(None)
        self.bank = encoder.encode(self.phrases)

    def match(self, phrase: str) -> TargetMatch:
        text = normalise_phrase(phrase)
        if not text:
            return TargetMatch(None, "", 0.0)
        sims = self.bank @ self.encoder.encode([text])[0]
        k = int(np.argmax(sims))
        target = self.labels[k] if sims[k] >= MIN_SIMILARITY else None
        return TargetMatch(target, self.phrases[k], float(sims[k]))

    def require(self, phrase: str) -> str:
        """The target a phrase selects, or an ``UnknownTarget`` sentence naming what this model knows."""
        m = self.match(phrase)
        if m.target is None:
            raise UnknownTarget(unknown_target_message(phrase, self.targets))
        return m.target

    def suggestions(self) -> list[str]:
        return [TARGET_TITLES[t] for t in self.targets] + [p for t in self.targets for p in TARGET_PHRASES[t][2:6]]


def unknown_target_message(phrase: str, targets: Sequence[str] = (NODULE, GLAND)) -> str:
    known = " and ".join(f"'{TARGET_TITLES[t]}'" for t in targets)
    shown = phrase.strip()[:60] or "(empty)"
    return f"'{shown}' does not name a structure this model segments; it knows {known} (and their synonyms)."
