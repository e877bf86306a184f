"""The authors' CLIP-TNseg checkpoint layout (CGB.*, FGB.*, PH.*) loads into our network.

The reference key names and shapes are written out here from the reference
structure, independently of our module code: CLIPSeg-style CGB (reduce_dim 64,
3 extract layers, torch's default TransformerEncoderLayer), FGB residual U-Net
(32 channels, multipliers 1-1-2-2-4-4, two RBs per level down, three up) and
PH = RB(96, 64), RB(64, 64), Conv1x1(64 -> 1).
"""

from __future__ import annotations

import pytest
import torch

from tnseg_desktop.model.clip_tnseg import ClipTnseg
from tnseg_desktop.model.clip_tnseg_checkpoint import (
    ClipTnsegCheckpointError,
    from_reference_state_dict,
    load_checkpoint_into,
)


def _rb(prefix: str, cin: int, cout: int) -> dict[str, tuple[int, ...]]:
    keys = {
        f"{prefix}.in_layers.0.weight": (cin,),
        f"{prefix}.in_layers.0.bias": (cin,),
        f"{prefix}.in_layers.2.weight": (cout, cin, 3, 3),
        f"{prefix}.in_layers.2.bias": (cout,),
        f"{prefix}.out_layers.0.weight": (cout,),
        f"{prefix}.out_layers.0.bias": (cout,),
        f"{prefix}.out_layers.2.weight": (cout, cout, 3, 3),
        f"{prefix}.out_layers.2.bias": (cout,),
    }
    if cin != cout:
        keys[f"{prefix}.skip.weight"] = (cout, cin, 1, 1)
        keys[f"{prefix}.skip.bias"] = (cout,)
    return keys


def _encoder_layer(prefix: str, d: int = 64, ff: int = 2048) -> dict[str, tuple[int, ...]]:
    return {
        f"{prefix}.self_attn.in_proj_weight": (3 * d, d),
        f"{prefix}.self_attn.in_proj_bias": (3 * d,),
        f"{prefix}.self_attn.out_proj.weight": (d, d),
        f"{prefix}.self_attn.out_proj.bias": (d,),
        f"{prefix}.linear1.weight": (ff, d),
        f"{prefix}.linear1.bias": (ff,),
        f"{prefix}.linear2.weight": (d, ff),
        f"{prefix}.linear2.bias": (d,),
        f"{prefix}.norm1.weight": (d,),
        f"{prefix}.norm1.bias": (d,),
        f"{prefix}.norm2.weight": (d,),
        f"{prefix}.norm2.bias": (d,),
    }


def _coarse(prefix: str) -> dict[str, tuple[int, ...]]:
    keys = {
        f"{prefix}film_mul.weight": (64, 512),
        f"{prefix}film_mul.bias": (64,),
        f"{prefix}film_add.weight": (64, 512),
        f"{prefix}film_add.bias": (64,),
        f"{prefix}trans_conv.weight": (64, 64, 16, 16),
        f"{prefix}trans_conv.bias": (64,),
    }
    for i in range(3):
        keys[f"{prefix}reduces.{i}.weight"] = (64, 768)
        keys[f"{prefix}reduces.{i}.bias"] = (64,)
        keys.update(_encoder_layer(f"{prefix}blocks.{i}"))
    return keys


def _fine(prefix: str = "FGB") -> dict[str, tuple[int, ...]]:
    mults = [1, 1, 2, 2, 4, 4]
    keys = {f"{prefix}.enc_blocks.0.weight": (32, 3, 3, 3), f"{prefix}.enc_blocks.0.bias": (32,)}
    ch, chans, idx = 32, [32], 1
    for level, m in enumerate(mults):
        for _ in range(2):
            keys.update(_rb(f"{prefix}.enc_blocks.{idx}.0", ch, m * 32))
            ch = m * 32
            chans.append(ch)
            idx += 1
        if level != len(mults) - 1:
            keys[f"{prefix}.enc_blocks.{idx}.0.weight"] = (ch, ch, 3, 3)
            keys[f"{prefix}.enc_blocks.{idx}.0.bias"] = (ch,)
            chans.append(ch)
            idx += 1
    keys.update(_rb(f"{prefix}.middle_block.0", ch, ch))
    keys.update(_rb(f"{prefix}.middle_block.1", ch, ch))
    idx = 0
    for level, m in enumerate(reversed(mults)):
        for block in range(3):
            keys.update(_rb(f"{prefix}.dec_blocks.{idx}.0", ch + chans.pop(), m * 32))
            ch = m * 32
            if level < len(mults) - 1 and block == 2:
                keys[f"{prefix}.dec_blocks.{idx}.1.1.weight"] = (ch, ch, 3, 3)
                keys[f"{prefix}.dec_blocks.{idx}.1.1.bias"] = (ch,)
            idx += 1
    return keys


def reference_shapes() -> dict[str, tuple[int, ...]]:
    shapes = _coarse("CGB.")
    shapes.update(_fine("FGB"))
    shapes.update(_rb("PH.0", 96, 64))
    shapes.update(_rb("PH.1", 64, 64))
    shapes.update({"PH.2.weight": (1, 64, 1, 1), "PH.2.bias": (1,)})
    return shapes


def ignored_shapes() -> dict[str, tuple[int, ...]]:
    """Present in a saved reference model but unused: the outer copy, CGB.reduce, CLIP pieces."""
    shapes = _coarse("")
    shapes.update({"reduce.weight": (64, 768), "reduce.bias": (64,), "CGB.reduce.weight": (64, 768), "CGB.reduce.bias": (64,)})
    shapes.update({"CGB.clip_model.visual.conv1.weight": (768, 3, 16, 16), "CGB.model.conv1.weight": (768, 3, 16, 16)})
    return shapes


def random_state(shapes: dict[str, tuple[int, ...]], seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(s, generator=g) for k, s in shapes.items()}


@pytest.fixture(scope="module")
def vit_b_shaped_model() -> ClipTnseg:
    """ViT width 768, patch 16, 512-d text embedding, 10 blocks (layers 3, 7, 9 exist); a thin MLP keeps it small."""
    from tests.model.conftest import make_tiny_clip

    return ClipTnseg(make_tiny_clip(vision_width=768, vision_layers=10, mlp_ratio=0.25))


def test_reference_layout_key_count_matches_ours(vit_b_shaped_model):
    ours = vit_b_shaped_model.trainable_state_dict()
    assert len(reference_shapes()) == len(ours)
    mapped = from_reference_state_dict(random_state(reference_shapes(), 0))
    assert set(mapped) == set(ours)
    assert all(tuple(mapped[k].shape) == tuple(ours[k].shape) for k in ours)


def test_every_reference_tensor_arrives(vit_b_shaped_model, tmp_path):
    reference = random_state(reference_shapes(), 1)
    saved = {**reference, **random_state(ignored_shapes(), 2)}
    path = tmp_path / "clip_tnseg_reference.pth"
    torch.save(saved, path)
    load_checkpoint_into(vit_b_shaped_model, path)
    ours = vit_b_shaped_model.state_dict()
    prefix = {"CGB.": "coarse.", "FGB.": "fine.", "PH.": "head."}
    for key, value in reference.items():
        head = next(p for p in prefix if key.startswith(p))
        assert torch.equal(ours[prefix[head] + key[len(head) :]], value), key


def test_reference_checkpoint_runs(vit_b_shaped_model):
    vit_b_shaped_model.load_trainable_state_dict(from_reference_state_dict({k: v * 0.02 for k, v in random_state(reference_shapes(), 3).items()}))
    vit_b_shaped_model.eval()
    with torch.no_grad():
        out = vit_b_shaped_model(torch.rand(1, 1, 32, 32), "thyroid nodule")
    assert out.shape == (1, 1, 32, 32) and torch.isfinite(out).all()


def test_unknown_reference_layers_are_refused(tmp_path):
    state = random_state(reference_shapes(), 4)
    state["CGB.extra_blocks.0.linear1.weight"] = torch.zeros(2048, 64)
    with pytest.raises(ClipTnsegCheckpointError, match="extra_blocks"):
        from_reference_state_dict(state)


def test_wrong_shape_is_refused_with_one_sentence(vit_b_shaped_model, tmp_path):
    state = random_state(reference_shapes(), 5)
    state["PH.2.weight"] = torch.zeros(2, 64, 1, 1)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(ClipTnsegCheckpointError) as info:
        load_checkpoint_into(vit_b_shaped_model, path)
    assert "wrong shape" in info.value.one_line() and "\n" not in info.value.one_line()
