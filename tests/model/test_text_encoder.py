"""The real all-MiniLM-L6-v2 from its package, run by the project's own BERT forward, and the target lookup."""

from __future__ import annotations

import numpy as np
import pytest

from tnseg_desktop.model.prompt_targets import GLAND, NODULE, OTHER_PHRASES, TARGET_PHRASES, TargetLookup, UnknownTarget
from tnseg_desktop.model.text_encoder import cosine, default_text_encoder

# never used in training or in the lookup's lists
HELD_BACK = {
    NODULE: ["nodule in the thyroid", "thyroid cyst", "solid hypoechoic lesion", "complex nodule", "suspicious lesion", "thyroid nodules"],
    GLAND: ["thyroid glands", "whole thyroid gland", "lobe of the thyroid", "thyroid region", "the whole gland", "right lobe"],
}
OFF_TARGET = ["carotid", "fat layer", "breast tissue", "vessel", "artery", "spine", "hello", "colour bar", "parathyroid", "femur",
              "aorta", "tendon", "nerve", "cornea", "rib", "appendix", "bowel loop", "pizza", "keyboard", "sky"]


@pytest.fixture(scope="module")
def encoder():
    return default_text_encoder()


@pytest.fixture(scope="module")
def lookup(encoder):
    return TargetLookup(encoder)


def test_vectors_are_unit_length_and_match_the_published_model(encoder):
    v = encoder.encode(["thyroid nodule", "nodule", "thyroid gland", "the thyroid", "banana"])
    assert v.shape == (5, 384)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    # figures measured with sentence-transformers' own pipeline (DESIGN.md section 2)
    assert cosine(v[1], v[0]) == pytest.approx(0.66, abs=0.01)
    assert cosine(v[3], v[2]) == pytest.approx(0.87, abs=0.01)
    assert cosine(v[4], v[0]) == pytest.approx(0.04, abs=0.01)


def test_two_synonyms_are_closer_than_two_targets(encoder):
    a, b, c = encoder.encode(["thyroid gland", "thyroid lobe", "thyroid nodule"])
    assert cosine(a, b) > cosine(a, c)


def test_a_phrase_is_encoded_once(encoder):
    first = encoder.encode(["  Thyroid   NODULE "])
    assert np.array_equal(first, encoder.encode(["thyroid nodule"]))


def test_held_back_paraphrases_select_their_target(lookup):
    for target, phrases in HELD_BACK.items():
        for p in phrases:
            assert p not in TARGET_PHRASES[target]
            assert lookup.match(p).target == target, p


def test_off_target_phrases_select_nothing_and_say_what_is_known(lookup):
    assert not set(OFF_TARGET) & set(OTHER_PHRASES)
    for p in OFF_TARGET:
        assert lookup.match(p).target is None, p
    with pytest.raises(UnknownTarget, match="knows 'thyroid nodule' and 'thyroid gland'"):
        lookup.require("liver")
