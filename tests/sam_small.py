"""Small randomly initialised SAM and MobileSAM for tests and the UI benchmark (same code paths, tiny encoders)."""

from __future__ import annotations

import torch
from torch import nn

from tnseg_desktop.model.sam_adapter import assemble_sam, vit_image_encoder
from tnseg_desktop.model.sam_tinyvit import TinyViT


def small_sam(img_size: int = 256, seed: int = 0) -> nn.Module:
    """SAM with a 2-block, 64-wide ViT encoder (full-size prompt encoder and mask decoder)."""
    torch.manual_seed(seed)
    enc = vit_image_encoder(img_size=img_size, embed_dim=64, depth=2, num_heads=2, global_attn_indexes=(1,), window_size=8)
    return assemble_sam(enc, image_size=img_size)


def small_mobile_sam(img_size: int = 256, seed: int = 0) -> nn.Module:
    """MobileSAM with a narrow, shallow TinyViT encoder."""
    torch.manual_seed(seed)
    enc = TinyViT(
        img_size=img_size,
        embed_dims=(16, 32, 48, 64),
        depths=(1, 1, 2, 1),
        num_heads=(1, 2, 3, 4),
        window_sizes=(7, 7, 8, 8),
        num_classes=0,
    )
    return assemble_sam(enc, image_size=img_size)
