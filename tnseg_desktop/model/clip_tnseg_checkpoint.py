"""CLIP-TNseg checkpoints: the authors' layout and ours, both loaded through the safe loader.

The authors' reference implementation saves ``CGB.*`` (coarse branch),
``FGB.*`` (fine branch) and ``PH.*`` (head). Its outer module also carries a
second, unused copy of the coarse-branch layers at top level (``reduces.*``,
``film_mul.*``, ...), an unused single ``reduce`` layer, and possibly the
frozen CLIP (``clip_model.*``, ``model.*``); none of those are used by its
forward pass, so they are ignored here. Our own checkpoints hold
``coarse.*``, ``fine.*`` and ``head.*`` (:meth:`ClipTnseg.trainable_state_dict`).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from tnseg_desktop.atomic_write import atomic_path
from tnseg_desktop.errors import UserFacingError
from tnseg_desktop.model.clip_tnseg import ClipTnseg
from tnseg_desktop.model.safe_load import load_state_dict

REFERENCE_PREFIXES = {"CGB.": "coarse.", "FGB.": "fine.", "PH.": "head."}
REFERENCE_COARSE_LAYERS = ("film_mul.", "film_add.", "reduces.", "blocks.", "trans_conv.")
# present in the reference's CGB but unused by its forward pass (or the frozen CLIP itself)
REFERENCE_IGNORED_IN_CGB = ("clip_model.", "model.", "reduce.")


class ClipTnsegCheckpointError(UserFacingError):
    """A CLIP-TNseg checkpoint that does not fit the network."""


def is_reference_layout(state: dict[str, torch.Tensor]) -> bool:
    return any(k.startswith(tuple(REFERENCE_PREFIXES)) for k in state)


def from_reference_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The authors' ``CGB/FGB/PH`` state dict -> our ``coarse/fine/head`` names (tensors shared, not copied)."""
    mapped: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    for key, value in state.items():
        prefix = next((p for p in REFERENCE_PREFIXES if key.startswith(p)), None)
        if prefix is None:
            continue  # the outer unused copy of the coarse layers, or CLIP
        rest = key[len(prefix) :]
        if prefix == "CGB.":
            if rest.startswith(REFERENCE_IGNORED_IN_CGB):
                continue
            if not rest.startswith(REFERENCE_COARSE_LAYERS):
                unknown.append(key)  # e.g. extra_blocks or a shift vector: a configuration we do not build
                continue
        mapped[REFERENCE_PREFIXES[prefix] + rest] = value
    if unknown:
        raise ClipTnsegCheckpointError(
            f"the checkpoint uses coarse-branch layers this network does not have ({', '.join(unknown[:3])}{', ...' if len(unknown) > 3 else ''})."
        )
    return mapped


def load_checkpoint_into(model: ClipTnseg, path: str | Path, expected_sha256: str | None = None) -> None:
    """Load either layout into ``model``; anything that does not fit raises a one-sentence error naming the file."""
    state = load_state_dict(path, expected_sha256=expected_sha256)
    if is_reference_layout(state):
        state = from_reference_state_dict(state)
    else:
        state = {k: v for k, v in state.items() if not k.startswith("clip.")}
    try:
        model.load_trainable_state_dict({k: v.float() for k, v in state.items()})
    except KeyError as exc:
        raise ClipTnsegCheckpointError(f"{exc.args[0]}.", str(path)) from None


def save_checkpoint(model: ClipTnseg, path: str | Path, info: dict | None = None) -> Path:
    """Write the trainable parameters as safetensors, atomically (temp file + rename)."""
    from safetensors.torch import save_file

    path = Path(path)
    state = {k: v.detach().cpu().contiguous().float() for k, v in model.trainable_state_dict().items()}
    metadata = {"arch": ClipTnseg.arch, "extract_layers": json.dumps(list(model.extract_layers)), "info": json.dumps(info or {})}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=metadata)
    return path
