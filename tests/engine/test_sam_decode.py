"""The token-major decoder path equals segment_anything's own MaskDecoder (float32, small random models)."""

from __future__ import annotations

import pytest
import torch

from tnseg_desktop.engine.sam_decode import decode, dense_tokens, folding_pays, to_tokens
from sam_small import small_mobile_sam, small_sam


@pytest.mark.parametrize("kind", ["sam", "mobilesam"])
@pytest.mark.parametrize("multimask", [False, True])
@pytest.mark.parametrize("with_mask", [False, True])
@pytest.mark.parametrize("fold", [False, True])
@pytest.mark.parametrize("token_dense", [False, True])
def test_decode_equals_reference_decoder(kind, multimask, with_mask, fold, token_dense):
    torch.manual_seed(1)
    model = (small_sam() if kind == "sam" else small_mobile_sam()).eval()
    pe_grid = model.prompt_encoder.get_dense_pe()
    g = tuple(int(v) for v in model.prompt_encoder.image_embedding_size)
    emb = torch.randn(1, pe_grid.shape[1], *g)
    size = float(model.image_encoder.img_size)
    points = (torch.tensor([[[0.4 * size, 0.3 * size], [0.1 * size, 0.05 * size]]]), torch.tensor([[1, 0]]))
    box = torch.tensor([[0.2 * size, 0.2 * size, 0.7 * size, 0.6 * size]])
    mask = torch.randn(1, 1, *model.prompt_encoder.mask_input_size) * 4 if with_mask else None
    with torch.inference_mode():
        sparse, dense = model.prompt_encoder(points=points, boxes=box, masks=mask)
        ref_masks, ref_iou = model.mask_decoder(image_embeddings=emb, image_pe=pe_grid, sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=multimask)
        if token_dense:  # the refiner's path: the dense embedding computed token-major
            dense = dense_tokens(model.prompt_encoder, mask, torch.float32)
        masks, iou = decode(model.mask_decoder, to_tokens(emb), to_tokens(pe_grid), g, sparse, dense, multimask, fold=fold)
    assert masks.shape == ref_masks.shape and iou.shape == ref_iou.shape
    assert ref_masks.abs().max() > 1e-3  # a non-trivial answer to compare
    torch.testing.assert_close(masks, ref_masks, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(iou, ref_iou, atol=2e-5, rtol=1e-4)


def test_to_tokens_is_contiguous_and_token_major():
    grid = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(1, 2, 3, 4)
    t = to_tokens(grid)
    assert t.shape == (1, 12, 2) and t.is_contiguous()
    assert t[0, 5].tolist() == grid[0, :, 1, 1].tolist()


def test_folding_is_chosen_for_a_few_clicks_only():
    attn = small_sam().mask_decoder.transformer.final_attn_token_to_image  # 8 heads, width 128
    # 5 output tokens + 2 clicks + SAM's padding point = 8 tokens -> 64 columns instead of 128
    assert folding_pays(attn, 8)
    assert not folding_pays(attn, 5 + 15)


def test_group_softmax_matches_torch_and_survives_large_logits():
    from tnseg_desktop.engine.sam_decode import _group_softmax

    x = torch.randn(50, 24) * 3
    x[:, :8] += 200.0  # one head far above the others must not starve the rest
    got = _group_softmax(x, 3, 8)
    want = x.view(50, 3, 8).softmax(-1).view(50, 24)
    torch.testing.assert_close(got, want)
    assert torch.isfinite(got).all()
