from __future__ import annotations

import pytest
import torch

from tnseg_desktop.model.clip_tnseg import ClipTnseg, interpolated_position_embedding
from tnseg_desktop.model.clip_tnseg_checkpoint import load_checkpoint_into, save_checkpoint


def test_output_shape_and_only_non_clip_parameters_learn(tiny_model):
    tiny_model.train()
    x = torch.rand(2, 1, 32, 32)
    logits = tiny_model(x, ["thyroid nodule", "benign nodule"])
    assert logits.shape == (2, 1, 32, 32)
    logits.float().pow(2).mean().backward()
    clip_params = list(tiny_model.clip.parameters())
    assert clip_params and all(not p.requires_grad and p.grad is None for p in clip_params)
    trainable = [(n, p) for n, p in tiny_model.named_parameters() if not n.startswith("clip.")]
    assert trainable
    no_grad = [n for n, p in trainable if p.grad is None]
    assert not no_grad, no_grad
    assert any(p.grad.abs().sum() > 0 for n, p in trainable if n.startswith("coarse.reduces"))
    assert tiny_model.clip.training is False  # frozen CLIP stays in eval mode


def test_rgb_input_and_interpolated_token_grid(tiny_model):
    tiny_model.eval()
    with torch.no_grad():
        out = tiny_model(torch.rand(1, 3, 96, 96))  # 6x6 tokens from a 4x4 native grid
    assert out.shape == (1, 1, 96, 96)
    pos = torch.randn(1 + 16, 8)
    grown = interpolated_position_embedding(pos, (4, 4), (22, 22))
    assert grown.shape == (1 + 22 * 22, 8)
    assert torch.equal(grown[0], pos[0])


def test_two_prompts_give_different_outputs_and_text_is_cached(tiny_model, monkeypatch):
    tiny_model.eval()
    calls = []
    real = tiny_model.clip.encode_text
    monkeypatch.setattr(tiny_model.clip, "encode_text", lambda tokens, *a, **k: calls.append(len(tokens)) or real(tokens, *a, **k))
    x = torch.rand(1, 1, 32, 32)
    with torch.no_grad():
        a = tiny_model(x, "thyroid nodule")
        b = tiny_model(x, "a photo of a cat")
        a2 = tiny_model(x, "thyroid nodule")
    assert (a - b).abs().max() > 1e-4
    assert torch.allclose(a, a2)
    assert calls == [1, 1]  # each prompt encoded once


def test_conditioning_mix_uses_support_image_only_in_training(tiny_model):
    x = torch.rand(2, 1, 32, 32)
    support = torch.rand(4, 1, 64, 64)
    text = tiny_model.text_embedding(["thyroid nodule"] * 4)
    tiny_model.train()
    torch.manual_seed(0)
    mixed = tiny_model.condition("thyroid nodule", 4, support, mix_probability=1.0)
    assert mixed.shape == text.shape and not torch.allclose(mixed, text)
    visual = tiny_model.image_embedding(tiny_model.normalise(support))
    # every mixed vector lies on the segment between its text and visual embeddings
    alpha = ((mixed - visual) * (text - visual)).sum(1) / (text - visual).pow(2).sum(1)
    assert torch.all((alpha >= -1e-4) & (alpha <= 1 + 1e-4))
    tiny_model.eval()
    assert torch.allclose(tiny_model.condition("thyroid nodule", 4, support), text)
    tiny_model.train()
    assert tiny_model(x, "thyroid nodule", support_images01=support[:2]).shape == (2, 1, 32, 32)


def test_trainable_state_dict_round_trip_and_strict_loading(tiny_model, tmp_path):
    from tests.model.conftest import make_tiny_clip

    state = tiny_model.trainable_state_dict()
    assert state and not any(k.startswith("clip.") for k in state)
    assert {k.split(".")[0] for k in state} == {"coarse", "fine", "head"}
    path = save_checkpoint(tiny_model, tmp_path / "ct.safetensors")
    other = ClipTnseg(make_tiny_clip(), input_size=64)
    load_checkpoint_into(other, path)
    for k, v in other.trainable_state_dict().items():
        assert torch.equal(v, state[k]), k
    broken = dict(state)
    broken.pop("head.2.weight")
    with pytest.raises(KeyError, match="missing"):
        other.load_trainable_state_dict(broken)
    with pytest.raises(KeyError, match="unexpected"):
        other.load_trainable_state_dict({**state, "coarse.extra.weight": torch.zeros(1)})


def test_extract_layers_must_exist(tiny_clip):
    with pytest.raises(ValueError):
        ClipTnseg(tiny_clip, extract_layers=(3, 7, 12))
