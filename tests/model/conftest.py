"""Tiny random CLIP models for the clip-tnseg tests (no real weights exist on test machines)."""

from __future__ import annotations

import pytest
import torch

from tnseg_desktop.model.torchvision_compat import import_torchvision

import_torchvision()

TINY_IMAGE = 64  # native grid 4x4 at patch 16: other input sizes exercise the position-embedding interpolation


def make_tiny_clip(seed: int = 0, vision_width: int = 64, vision_layers: int = 10, mlp_ratio: float = 2.0, head_width: int = 32, text_heads: int = 2) -> torch.nn.Module:
    """A random open_clip CLIP with OpenAI's layout and QuickGELU: 10 ViT blocks so layers 3, 7, 9 exist."""
    from open_clip.model import CLIP

    torch.manual_seed(seed)
    model = CLIP(
        embed_dim=512,
        vision_cfg=dict(image_size=TINY_IMAGE, layers=vision_layers, width=vision_width, patch_size=16, head_width=head_width, mlp_ratio=mlp_ratio),
        text_cfg=dict(context_length=77, vocab_size=49408, width=64, heads=text_heads, layers=2),
        quick_gelu=True,
    )
    return model.eval()


def make_openai_style_clip(vision_layers: int) -> torch.nn.Module:
    """Tiny, but with what open_clip assumes when it rebuilds from OpenAI weights: 64-wide heads, MLP ratio 4."""
    return make_tiny_clip(vision_layers=vision_layers, mlp_ratio=4.0, head_width=64, text_heads=1)


@pytest.fixture()
def tiny_clip() -> torch.nn.Module:
    return make_tiny_clip()


@pytest.fixture()
def tiny_model(tiny_clip):
    from tnseg_desktop.model.clip_tnseg import ClipTnseg

    torch.manual_seed(1)
    return ClipTnseg(tiny_clip, input_size=64)


@pytest.fixture(autouse=True)
def _one_thread():
    """These machines are shared: a single thread is faster than fighting for the cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
