"""Building Segment Anything models (vit_b/l/h and MobileSAM) and loading a user's checkpoint.

The networks are ``segment_anything``'s own classes; MobileSAM swaps in our
TinyViT image encoder (``sam_tinyvit``), whose parameter names match
``mobile_sam.pt``. Checkpoints are untrusted input and go through
``safe_load.load_state_dict``; nothing is downloaded here.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tnseg_desktop.errors import UserFacingError
from tnseg_desktop.model import registry
from tnseg_desktop.model.torchvision_compat import import_torchvision
from tnseg_desktop.paths import shipped_models_dir, user_models_dir

# the segment_anything builder key of each SAM model; file names and checksums are the registry's (models/registry.json)
SAM_ARCH: dict[str, str] = {"sam-vit-b": "vit_b", "sam-vit-l": "vit_l", "sam-vit-h": "vit_h", "mobilesam": "vit_t"}
SAM_NAMES = tuple(SAM_ARCH)


class SamWeightsMissing(UserFacingError):
    pass


class SamCheckpointMismatch(UserFacingError):
    pass


def _segment_anything() -> Any:
    import_torchvision()  # segment_anything imports torchvision at import time
    import segment_anything

    return segment_anything


def _sam_entry(name: str) -> registry.ModelEntry | None:
    """The registry entry of a SAM model, or None for another name (or a registry without it)."""
    if name not in SAM_ARCH:
        return None
    try:
        return registry.entry(name)
    except registry.RegistryError:
        return None


def find_sam_weights(name: str) -> Path | None:
    """The installed checkpoint for ``name`` (user model folder first, then shipped models), or None."""
    info = _sam_entry(name)
    if info is None:
        return None
    for folder in (user_models_dir(), shipped_models_dir()):
        candidate = folder / info.file
        if candidate.is_file():
            return candidate
    return None


def build_mobile_sam(encoder: nn.Module | None = None, image_size: int = 1024) -> nn.Module:
    """A randomly initialised MobileSAM: TinyViT encoder + SAM's prompt encoder and mask decoder."""
    from tnseg_desktop.model.sam_tinyvit import TinyViT

    enc = encoder if encoder is not None else TinyViT(img_size=image_size)
    return assemble_sam(enc, image_size=image_size)


def assemble_sam(image_encoder: nn.Module, image_size: int, embed_grid: int | None = None) -> nn.Module:
    """SAM around any image encoder with ``img_size`` that outputs (B, 256, S/16, S/16)."""
    _segment_anything()
    from segment_anything.modeling import PromptEncoder, Sam

    grid = embed_grid or image_size // 16
    sam = Sam(
        image_encoder=image_encoder,
        prompt_encoder=PromptEncoder(embed_dim=256, image_embedding_size=(grid, grid), input_image_size=(image_size, image_size), mask_in_chans=16),
        mask_decoder=build_mask_decoder(),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    )
    return sam.eval()


def build_mask_decoder() -> nn.Module:
    """SAM's mask decoder as every SAM size (and LiteMedSAM) has it, randomly initialised."""
    _segment_anything()
    from segment_anything.modeling import MaskDecoder, TwoWayTransformer

    return MaskDecoder(
        num_multimask_outputs=3,
        transformer=TwoWayTransformer(depth=2, embedding_dim=256, mlp_dim=2048, num_heads=8),
        transformer_dim=256,
        iou_head_depth=3,
        iou_head_hidden_dim=256,
    )


def build_position_embedding() -> nn.Module:
    """SAM's random-Fourier positional encoding of the embedding grid (its prompt encoder's ``pe_layer``)."""
    _segment_anything()
    from segment_anything.modeling.prompt_encoder import PositionEmbeddingRandom

    return PositionEmbeddingRandom(128)


def build_sam(arch: str) -> nn.Module:
    """Randomly initialised full-size SAM for ``vit_b``/``vit_l``/``vit_h``/``vit_t`` (MobileSAM)."""
    if arch == "vit_t":
        return build_mobile_sam()
    sa = _segment_anything()
    if arch not in sa.sam_model_registry:
        raise ValueError(f"unknown SAM architecture {arch!r}")
    # checkpoint=None: the registry builder would torch.load without weights_only
    return sa.sam_model_registry[arch](checkpoint=None).eval()


def vit_image_encoder(img_size: int, embed_dim: int, depth: int, num_heads: int, global_attn_indexes: tuple[int, ...], window_size: int = 14) -> nn.Module:
    """SAM's ViT image encoder in any size (small ones for tests)."""
    _segment_anything()
    from segment_anything.modeling import ImageEncoderViT

    return ImageEncoderViT(
        img_size=img_size,
        patch_size=16,
        embed_dim=embed_dim,
        depth=depth,
        num_heads=num_heads,
        mlp_ratio=4,
        out_chans=256,
        qkv_bias=True,
        norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
        use_rel_pos=True,
        global_attn_indexes=global_attn_indexes,
        window_size=window_size,
    )


def load_sam_checkpoint(model: nn.Module, path: Path, expected_sha256: str | None = None) -> None:
    """Load a SAM/MobileSAM state dict into ``model`` (strict); a wrong file is a one-sentence error."""
    from tnseg_desktop.model.safe_load import load_state_dict

    state = load_state_dict(path, expected_sha256=expected_sha256)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    misshaped = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or misshaped:
        raise SamCheckpointMismatch(
            f"this checkpoint does not fit the chosen Segment Anything model ({len(missing)} weights missing, "
            f"{len(unexpected)} unexpected, {len(misshaped)} of another shape).",
            str(path),
        )
    model.load_state_dict(state, strict=True)


def load_sam(name: str, path: Path | None = None, verify: bool = False) -> tuple[nn.Module, str]:
    """The model for ``name`` with its installed (or given) checkpoint, and the file's sha256.

    The sha256 keys the embedding cache; with ``verify`` it must also equal
    the official file's checksum where one is recorded.
    """
    if name not in SAM_ARCH:
        raise UserFacingError(f"unknown Segment Anything model '{name}': use one of {', '.join(SAM_NAMES)}.")
    info = registry.entry(name)
    path = path if path is not None else find_sam_weights(name)
    if path is None:
        raise SamWeightsMissing(
            f"{name} needs the file {info.file}, which is not installed; add it with 'tnseg-desktop models import FILE'."
        )
    from tnseg_desktop.file_hash import sha256_of
    from tnseg_desktop.model.safe_load import check_sha256

    if verify and info.sha256:
        check_sha256(path, info.sha256)
        digest = info.sha256
    else:
        digest = sha256_of(path)
    model = build_sam(SAM_ARCH[name])
    load_sam_checkpoint(model, path)
    return model.eval(), digest
