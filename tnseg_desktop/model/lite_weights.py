"""Saving and loading tnseg-lite weights as safetensors (no pickle, nothing in the file runs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from safetensors import safe_open

from tnseg_desktop.atomic_write import atomic_path
from tnseg_desktop.errors import UserFacingError
from tnseg_desktop.model.lite import TnsegLite
from tnseg_desktop.model.lite_limits import check_lite_config


def save_lite(model: TnsegLite, path: str | Path, info: dict[str, Any] | None = None) -> Path:
    """Write atomically: a cancelled or crashed run never leaves a partial model file."""
    path = Path(path)
    state = {k: v.detach().to("cpu").contiguous().float() for k, v in model.state_dict().items()}
    metadata = {"arch": TnsegLite.arch, "config": json.dumps(model.config), "info": json.dumps(info or {})}
    with atomic_path(path, mode=0o644) as tmp:  # weights are meant to be shared
        save_file(state, str(tmp), metadata=metadata)
    return path


def read_metadata(path: str | Path) -> dict[str, Any]:
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise UserFacingError(f"not a readable safetensors weights file ({exc}).", str(path)) from None
    out: dict[str, Any] = dict(meta)
    for key in ("config", "info"):
        if key in out:
            try:
                out[key] = json.loads(out[key])
            except json.JSONDecodeError:
                raise UserFacingError(f"the weights file's {key} metadata is damaged.", str(path)) from None
    return out


def load_lite(path: str | Path, device: torch.device | str = "cpu") -> TnsegLite:
    meta = read_metadata(path)
    if meta.get("arch") != TnsegLite.arch:
        raise UserFacingError(f"this weights file is for '{meta.get('arch', 'an unknown model')}', not tnseg-lite.", str(path))
    # the settings are checked before anything is built: a file claiming a huge network is refused at once
    model = TnsegLite.from_config(check_lite_config(meta.get("config", {}), str(path)))
    try:
        state = load_file(str(path), device="cpu")
        model.load_state_dict(state, strict=True)
    except (SafetensorError, RuntimeError) as exc:
        raise UserFacingError(f"the weights do not fit the tnseg-lite network ({str(exc).splitlines()[0]}).", str(path)) from None
    model.info = meta.get("info", {})  # type: ignore[attr-defined]
    return model.to(device).eval()


def average_lite(paths: list[str | Path]) -> TnsegLite:
    """The element-wise mean of several tnseg-lite weight files of one configuration.

    Averaging the snapshots of one run ("weight averaging") gives a model less tied to where the
    last steps happened to stop; tnseg-lite has GroupNorm only, so no statistics need recomputing.
    """
    if not paths:
        raise UserFacingError("give at least one weights file to average.")
    models = [load_lite(p) for p in paths]
    for p, m in zip(paths[1:], models[1:]):
        if m.config != models[0].config:
            raise UserFacingError(f"this file's network ({m.config}) differs from the first file's ({models[0].config}); only one configuration can be averaged.", str(p))
    states = [m.state_dict() for m in models]
    mean = {k: (sum(s[k].double() for s in states) / len(states)).to(v.dtype) if v.dtype.is_floating_point else v
            for k, v in states[0].items()}
    out = models[0]
    out.load_state_dict(mean)
    return out
