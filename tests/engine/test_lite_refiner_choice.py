"""The refiner setting: the best refiner whose weights are present, SAM when its module offers one."""

from __future__ import annotations

import sys
import types

import pytest

from tnseg_desktop.engine import refiner_choice
from tnseg_desktop.engine.lite_refiner import LiteRefiner
from tnseg_desktop.errors import UserFacingError
from tnseg_desktop.model.lite_weights import save_lite

try:
    from .interactive_helpers import random_lite
except ImportError:
    from interactive_helpers import random_lite


@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    monkeypatch.setenv("TNSEG_SHIPPED_MODELS", str(shipped))
    monkeypatch.setitem(sys.modules, "tnseg_desktop.engine.sam_refiner", None)  # import fails: no SAM here
    return shipped


def test_nothing_installed_says_so_in_one_sentence(no_weights):
    assert refiner_choice.available_refiners() == []
    with pytest.raises(UserFacingError) as info:
        refiner_choice.choose_refiner()
    assert "import" in info.value.one_line()
    with pytest.raises(UserFacingError):
        refiner_choice.make_refiner("sam-vit-b")


def test_lite_weights_present_make_tnseg_lite_the_default(no_weights):
    save_lite(random_lite(0), no_weights / "tnseg-lite.safetensors")
    assert refiner_choice.available_refiners() == ["tnseg-lite"]
    ref = refiner_choice.choose_refiner("auto")
    assert isinstance(ref, LiteRefiner) and ref.name == "tnseg-lite"
    with pytest.raises(UserFacingError, match="mobilesam"):
        refiner_choice.resolve_refiner_name("mobilesam")


def test_sam_refiners_rank_first_and_an_explicit_setting_wins(no_weights, monkeypatch):
    save_lite(random_lite(0), no_weights / "tnseg-lite.safetensors")
    made = []
    fake = types.ModuleType("tnseg_desktop.engine.sam_refiner")
    fake.available_sam_refiners = lambda: ["mobilesam", "sam-vit-b"]
    fake.make_sam_refiner = lambda name, device: made.append(name) or name
    monkeypatch.setitem(sys.modules, "tnseg_desktop.engine.sam_refiner", fake)
    assert refiner_choice.available_refiners() == ["sam-vit-b", "mobilesam", "tnseg-lite"]
    assert refiner_choice.choose_refiner() == "sam-vit-b" and made == ["sam-vit-b"]
    assert isinstance(refiner_choice.choose_refiner("tnseg-lite"), LiteRefiner)


def test_a_broken_sam_module_does_not_hide_tnseg_lite(no_weights, monkeypatch):
    save_lite(random_lite(0), no_weights / "tnseg-lite.safetensors")
    fake = types.ModuleType("tnseg_desktop.engine.sam_refiner")

    def broken():
        raise RuntimeError("checkpoint folder unreadable")

    fake.available_sam_refiners = broken
    monkeypatch.setitem(sys.modules, "tnseg_desktop.engine.sam_refiner", fake)
    assert refiner_choice.available_refiners() == ["tnseg-lite"]
