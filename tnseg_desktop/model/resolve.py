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
from tnseg_desktop.model.ensemble import ENSEMBLE, MEMBERS
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
TEXT_PROMPT_ARCHITECTURES = ("clip-tnseg", "tnseg-med")
TNSEG_MED = "tnseg-med"


def _weights_arch(path: Path) -> str | None:
    if path.suffix != ".safetensors" or not path.is_file():
        return None
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            return (fh.metadata() or {}).get("arch")
    except Exception:  # unreadable: the loader that is chosen says what is wrong
        return None


def architecture_of(name: str) -> str:
    """The architecture behind a registry name, a trained version or a weights file (its metadata's ``arch``)."""
    entry = _registry_entry(name)
    if entry is not None:
        return entry.architecture
    return _weights_arch(Path(name)) or str(name)


def is_ensemble(name: str) -> bool:
    return name == ENSEMBLE


def is_tnseg_med(name: str) -> bool:
    return not is_ensemble(name) and architecture_of(name).startswith(TNSEG_MED)


def accepts_text_prompt(name: str) -> bool:
    """Whether the model ``name`` (registry name, trained version or weights file) can use ``--prompt TEXT``.

    The one place that decides it: ``segment`` and ``eval`` refuse a prompt for any other model.
    """
    return is_ensemble(name) or architecture_of(name).startswith(TEXT_PROMPT_ARCHITECTURES)


def check_prompt_usable(name: str, prompt: str | None) -> None:
    """Raise a one-line error when a prompt is given for a model that cannot use one."""
    if prompt is not None and not accepts_text_prompt(name):
        raise UserFacingError(f"The model '{name}' cannot use a text prompt; leave out --prompt, or choose a model "
                              f"that reads one ({', '.join(TEXT_PROMPT_ARCHITECTURES)}).")


# best first, by ddti/val Dice (models/README.md): their mean 0.790 (0.804 outlined by SAM), tnseg-lite 0.762, tnseg-med 0.760
DEFAULT_AUTO_RANKING = (ENSEMBLE, "tnseg-lite", TNSEG_MED)


def _installed(name: str) -> bool:
    from tnseg_desktop.model import registry

    try:
        return name in registry.load_registry() and registry.status(name) == registry.INSTALLED
    except Exception:  # an unreadable registry counts as nothing installed
        return False


def _needs_met(name: str) -> bool:
    return name not in (TNSEG_MED, ENSEMBLE) or _installed("litemedsam")  # tnseg-med runs on LiteMedSAM's encoder


def _usable(name: str) -> bool:
    if is_ensemble(name):
        return all(_installed(m) for m in MEMBERS) and _needs_met(name)
    return _installed(name) and _needs_met(name)


def available_auto_models() -> list[str]:
    """Automatic-mask models whose weights are present, best first (clip-tnseg last: it needs the user's CLIP).

    The one owner of the default automatic model: the app, ``segment``, ``eval`` and the retraining worker
    take the first of these. tnseg-med also needs LiteMedSAM's encoder (a dependency, so normally present).
    """
    names = [n for n in DEFAULT_AUTO_RANKING if _usable(n)]
    if _installed("clip-tnseg") and _installed("clip-vit-b-16"):
        names.append("clip-tnseg")
    return names


def _status(name: str) -> str | None:
    from tnseg_desktop.model import registry

    try:
        return registry.status(name)
    except Exception:
        return None


def default_auto_model() -> str:
    """The automatic model used when none is named (tnseg-lite when nothing resolves, so errors name it)."""
    from tnseg_desktop.model import registry

    for name in DEFAULT_AUTO_RANKING:
        if is_ensemble(name):
            if _usable(name) or any(_status(m) == registry.CORRUPT for m in MEMBERS):
                return name  # a damaged member: loading the ensemble names its file
            continue
        status = _status(name)
        if status == registry.CORRUPT:
            return name  # never silently another model: using it says what is wrong with its file
        if status == registry.INSTALLED and _needs_met(name):
            return name
    return "tnseg-lite"


def load_auto_segmenter(name: str, device: torch.device, prompt: str | None = None, tta: bool = False,
                        lite_weights: str | None = None) -> AutoSegmenter:
    """``lite_weights``: the tnseg-lite file a composite model uses (the store's active version; default the shipped one)."""
    check_prompt_usable(name, prompt)
    if is_ensemble(name):
        from tnseg_desktop.model.ensemble import load_ensemble

        return load_ensemble(device, prompt, lite_weights=lite_weights)
    if _is_clip_tnseg(name):
        from tnseg_desktop.model.clip_tnseg_predictor import load_clip_tnseg_predictor

        return load_clip_tnseg_predictor(device, prompt=prompt, name=name if _registry_entry(name) is not None else "clip-tnseg")
    if is_tnseg_med(name):
        return load_tnseg_med_segmenter(name, device, prompt)
    from tnseg_desktop.model.lite_predictor import LitePredictor
    from tnseg_desktop.model.lite_weights import load_lite

    return LitePredictor(load_lite(resolve_lite_weights(name), device), device, tta=tta)


def text_condition_for(prompt: str) -> tuple[str, torch.Tensor]:
    """(the target a phrase selects, its text embedding); an ``UnknownTarget`` sentence when it selects none."""
    from tnseg_desktop.model.prompt_targets import TargetLookup
    from tnseg_desktop.model.text_encoder import default_text_encoder

    encoder = default_text_encoder()
    target = TargetLookup(encoder).require(prompt)
    return target, torch.from_numpy(encoder.encode([prompt]))


def load_tnseg_med_segmenter(name: str, device: torch.device, prompt: str | None = None, embed=None):
    """tnseg-med (a registry name or a weights file), conditioned on ``prompt`` when one is given."""
    from tnseg_desktop.model.tnseg_med_predictor import load_tnseg_med

    predictor = load_tnseg_med(resolve_lite_weights(name), device, embed=embed)
    if prompt is not None:
        _, cond = text_condition_for(prompt)
        predictor = predictor.with_condition(cond)
    return predictor
