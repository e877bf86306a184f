"""From a model name (or a weights file) to something that segments frames.

Names go through the weights registry (:mod:`tnseg_desktop.model.registry`):
registry entries, the user's trained versions, or a path to a weights file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, Sequence

import numpy as np
import torch

from tnseg_desktop.errors import UserFacingError
from tnseg_desktop.paths import shipped_models_dir, user_models_dir


class AutoSegmenter(Protocol):
    def auto_probs(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]: ...


def _registry_entry(name: str):
    from tnseg_desktop.model import registry

    return registry.load_registry().get(name)


def resolve_lite_weights(name: str) -> Path:
    """A path, a trained version in the user's model folder, or the shipped tnseg-lite."""
    p = Path(name)
    if p.suffix == ".safetensors" or p.is_file():
        if not p.is_file():
            raise UserFacingError("weights file not found.", str(p))
        return p
    entry = _registry_entry(name)
    if entry is not None:
        from tnseg_desktop.model import registry

        return registry.path_for(name)
    for candidate in (user_models_dir() / f"{name}.safetensors", shipped_models_dir() / f"{name}.safetensors"):
        if candidate.is_file():
            return candidate
    raise UserFacingError(f"no weights for model '{name}' (looked in {user_models_dir()} and {shipped_models_dir()}).")


def _is_clip_tnseg(name: str) -> bool:
    entry = _registry_entry(name)
    if entry is not None:
        return entry.architecture.startswith("clip-tnseg")
    return name.startswith("clip-tnseg")


# architectures whose automatic mask is conditioned on a text prompt
TEXT_PROMPT_ARCHITECTURES = ("clip-tnseg",)


def accepts_text_prompt(name: str) -> bool:
    """Whether the model ``name`` (registry name, trained version or weights file) can use ``--prompt TEXT``.

    The one place that decides it: ``segment`` and ``eval`` refuse a prompt for any other model.
    """
    entry = _registry_entry(name)
    architecture = entry.architecture if entry is not None else str(name)
    return architecture.startswith(TEXT_PROMPT_ARCHITECTURES)


def check_prompt_usable(name: str, prompt: str | None) -> None:
    """Raise a one-line error when a prompt is given for a model that cannot use one."""
    if prompt is not None and not accepts_text_prompt(name):
        raise UserFacingError(f"The model '{name}' cannot use a text prompt; leave out --prompt, or choose a model "
                              f"that reads one ({', '.join(TEXT_PROMPT_ARCHITECTURES)}).")


def load_auto_segmenter(name: str, device: torch.device, prompt: str | None = None, tta: bool = False) -> AutoSegmenter:
    check_prompt_usable(name, prompt)
    if _is_clip_tnseg(name):
        from tnseg_desktop.model.clip_tnseg_predictor import load_clip_tnseg_predictor

        return load_clip_tnseg_predictor(device, prompt=prompt, name=name if _registry_entry(name) is not None else "clip-tnseg")
    from tnseg_desktop.model.lite_predictor import LitePredictor
    from tnseg_desktop.model.lite_weights import load_lite

    return LitePredictor(load_lite(resolve_lite_weights(name), device), device, tta=tta)
