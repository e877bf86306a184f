"""The TinyViT encoder has mobile_sam.pt's layout and runs at any size."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from tnseg_desktop.model.sam_tinyvit import TinyViT

# facts about the released mobile_sam.pt image encoder
KNOWN_SHAPES = {
    "patch_embed.seq.0.c.weight": (32, 3, 3, 3),
    "patch_embed.seq.2.bn.running_var": (64,),
    "layers.0.blocks.1.conv2.c.weight": (256, 1, 3, 3),
    "layers.0.downsample.conv1.c.weight": (128, 64, 1, 1),
    "layers.1.blocks.0.attn.attention_biases": (4, 49),
    "layers.1.blocks.0.attn.qkv.weight": (384, 128),
    "layers.2.blocks.5.attn.attention_biases": (5, 196),
    "layers.2.downsample.conv2.c.weight": (320, 1, 3, 3),
    "layers.3.blocks.1.mlp.fc2.weight": (320, 1280),
    "layers.3.blocks.1.local_conv.bn.weight": (320,),
    "norm_head.weight": (320,),
    "head.weight": (1000, 320),
    "neck.0.weight": (256, 320, 1, 1),
    "neck.3.bias": (256,),
}


def test_full_size_layout():
    enc = TinyViT()
    sd = enc.state_dict()
    for k, shape in KNOWN_SHAPES.items():
        assert tuple(sd[k].shape) == shape, k
    assert sum(p.numel() for p in enc.parameters()) == 6_065_532
    assert enc.out_resolution == 64
    assert not any("bias_index" in k for k in sd)  # derived, not stored


def test_small_forward_shape():
    enc = TinyViT(img_size=256, embed_dims=(16, 32, 48, 64), depths=(1, 1, 1, 1), num_heads=(1, 2, 3, 4), window_sizes=(7, 7, 8, 8), num_classes=0).eval()
    with torch.no_grad():
        out = enc(torch.randn(1, 3, 256, 256))
    assert out.shape == (1, 256, 16, 16)
    assert torch.isfinite(out).all()


def test_window_bias_index_is_offset_table():
    from tnseg_desktop.model.sam_tinyvit import WindowAttention

    att = WindowAttention(8, 2, 3)
    idx = att.bias_index
    # token (0,0) vs (2,1): |dr|=2, |dc|=1 -> 2*3+1
    assert idx[0, 2 * 3 + 1] == 7 and idx[2 * 3 + 1, 0] == 7
    assert idx.diagonal().eq(0).all() and int(idx.max()) == 8


def test_matches_reference_implementation_when_available():
    """Optional: compare with MobileSAM's own TinyViT if a copy of the package is importable."""
    from tnseg_desktop.model.torchvision_compat import import_torchvision

    import_torchvision()
    mobile_sam = pytest.importorskip("mobile_sam.modeling.tiny_vit_sam")
    torch.manual_seed(0)
    ref = mobile_sam.TinyViT(img_size=1024, embed_dims=[64, 128, 160, 320], depths=[2, 2, 6, 2], num_heads=[2, 4, 5, 10], window_sizes=[7, 7, 14, 7], drop_path_rate=0.0).eval()
    mine = TinyViT().eval()
    mine.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(1, 3, 1024, 1024)
    with torch.no_grad():
        assert torch.allclose(ref(x), mine(x), atol=1e-4)
