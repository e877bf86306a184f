"""Regression guard for the shipped weights (see models/README.md for the figures)."""

import hashlib
import json

import pytest

from tnseg_desktop.model.lite_predictor import LitePredictor
from tnseg_desktop.model.lite_weights import load_lite
from tnseg_desktop.paths import shipped_models_dir
from tnseg_desktop.training.data import load_folder
from tnseg_desktop.training.evaluate import evaluate_probs

# the model card reports 0.7605 on ddti/val (0.7649 and 0.7295 for the two earlier versions); this floor catches a broken or swapped file
MIN_VAL_DICE = 0.70


def test_shipped_file_matches_registry():
    folder = shipped_models_dir()
    entry = next(e for e in json.loads((folder / "registry.json").read_text())["models"] if e["name"] == "tnseg-lite")
    data = (folder / entry["file"]).read_bytes()
    assert len(data) == entry["size"]
    assert hashlib.sha256(data).hexdigest() == entry["sha256"]


def test_shipped_model_reaches_minimum_val_dice(shared_data):
    model = load_lite(shipped_models_dir() / "tnseg-lite.safetensors")
    samples = load_folder(shared_data / "ddti" / "val")
    result = evaluate_probs(LitePredictor(model).auto_probs, samples)
    assert result["n"] == 92
    assert result["dice_mean"] >= MIN_VAL_DICE, result["dice_mean"]
