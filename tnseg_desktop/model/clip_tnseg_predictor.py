"""Running CLIP-TNseg on frames: text-prompted nodule probability at each frame's resolution.

``load_clip_tnseg_predictor`` finds the user's OpenAI CLIP file and a
CLIP-TNseg checkpoint through the registry, checks the CLIP file's sha256 and
reads both with the safe loader. ``ClipTnsegPredictor(model, ...)`` wraps an
already built network (tests, benchmarks).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from tnseg_desktop.errors import UserFacingError
from tnseg_desktop.model import registry
from tnseg_desktop.model.clip_tnseg import DEFAULT_PROMPT, ClipTnseg
from tnseg_desktop.model.clip_tnseg_checkpoint import load_checkpoint_into
from tnseg_desktop.model.frame_batches import probs_at_frame_size
from tnseg_desktop.model.safe_load import load_state_dict

CLIP_ENTRY = "clip-vit-b-16"
CHECKPOINT_ENTRY = "clip-tnseg"
# in OpenAI's archive (or a traced open_clip model) but not parameters of open_clip's CLIP
OPENAI_NON_PARAMETERS = ("input_resolution", "context_length", "vocab_size", "attn_mask")


class ClipWeightsMissing(UserFacingError):
    pass


class ClipTnsegWeightsMissing(UserFacingError):
    pass


def clip_from_openai_state_dict(state: dict[str, torch.Tensor]) -> torch.nn.Module:
    """An open_clip CLIP (QuickGELU, as OpenAI trained it) built from OpenAI-layout weights, frozen, fp32.

    The architecture (width, layers, patch, context) is read from the tensors,
    so OpenAI's ViT-B/16 gives open_clip's ``ViT-B-16-quickgelu``.
    """
    from tnseg_desktop.model.torchvision_compat import import_torchvision

    import_torchvision()
    from open_clip.model import build_model_from_openai_state_dict

    state = {k: v for k, v in state.items() if k.rsplit(".", 1)[-1] not in OPENAI_NON_PARAMETERS}
    model = build_model_from_openai_state_dict(state, quick_gelu=True, cast_dtype=None)
    # open_clip rounds through fp16 while building; reload so fp32 sources stay exact
    model = model.float()
    model.load_state_dict({k: v.float() for k, v in state.items()})
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def load_openai_clip(path: str | Path, expected_sha256: str | None = None) -> torch.nn.Module:
    """The user's ``ViT-B-16.pt`` (OpenAI's TorchScript archive) -> open_clip CLIP, without running its code.

    open_clip's own ``create_model_and_transforms("ViT-B-16", pretrained=PATH)``
    cannot read this archive: it calls ``torch.load(weights_only=True)``, which
    refuses TorchScript, and its ``ViT-B-16`` config uses GELU where OpenAI's
    weights were trained with QuickGELU.
    """
    state = load_state_dict(path, expected_sha256=expected_sha256)
    try:
        return clip_from_openai_state_dict(state)
    except (KeyError, RuntimeError, ValueError) as exc:
        raise UserFacingError(f"does not hold OpenAI CLIP weights ({' '.join(str(exc).split())[:160]}).", str(path)) from None


def _autocast(device: torch.device, enabled: bool):
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if device.type == "cpu" else torch.float16)


class ClipTnsegPredictor:
    def __init__(self, model: ClipTnseg, device: torch.device | str = "cpu", prompt: str | None = None, low_precision: bool = True) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.size = int(model.input_size)
        self.prompt = prompt or DEFAULT_PROMPT
        self.low_precision = low_precision

    @torch.no_grad()
    def _forward(self, images01: np.ndarray, prompt: str) -> np.ndarray:
        x = torch.from_numpy(images01).to(self.device)[:, None]
        cond = self.model.text_embedding([prompt] * x.shape[0])
        with _autocast(self.device, self.low_precision):
            logits = self.model(x, cond=cond).float()
        return torch.sigmoid(logits)[:, 0].cpu().numpy()

    def auto_probs(self, frames: Sequence[np.ndarray], batch_size: int = 4) -> list[np.ndarray]:
        """Nodule probability per frame for the predictor's prompt, each at its frame's resolution."""
        return self._probs(frames, self.prompt, batch_size)

    def prob_map(self, frame: np.ndarray, prompt: str | None = None) -> np.ndarray:
        """Probability map of one frame for ``prompt`` (the predictor's default when None)."""
        return self._probs([frame], prompt or self.prompt, 1)[0]

    def _probs(self, frames: Sequence[np.ndarray], prompt: str, batch_size: int) -> list[np.ndarray]:
        return probs_at_frame_size(frames, self.size, lambda x: self._forward(x, prompt), batch_size)


def _required_path(name: str, error: type[UserFacingError]) -> Path:
    try:
        return registry.path_for(name)
    except registry.ModelNotInstalled as exc:
        raise error(exc.message) from None


def load_clip_tnseg_predictor(device: torch.device | str, prompt: str | None = None, name: str = CHECKPOINT_ENTRY) -> ClipTnsegPredictor:
    """CLIP-TNseg from the installed CLIP file and checkpoint ``name``; one-sentence errors when either is missing."""
    clip_path = _required_path(CLIP_ENTRY, ClipWeightsMissing)
    checkpoint_path = _required_path(name, ClipTnsegWeightsMissing)
    clip = load_openai_clip(clip_path, expected_sha256=registry.entry(CLIP_ENTRY).sha256)
    model = ClipTnseg(clip)
    load_checkpoint_into(model, checkpoint_path, expected_sha256=registry.entry(name).sha256)
    return ClipTnsegPredictor(model, device, prompt=prompt)
