"""SAM's mask decoder run on token-major (N, HW, C) tensors, for the per-click path.

``segment_anything.modeling.MaskDecoder.forward`` takes the image embedding
as (1, C, H, W) and permutes it to tokens inside; every addition on those
permuted views then walks memory with a stride of H*W elements. On the CPU
that made elementwise adds about half of a click's cost (profiled: 40 ms of
80 ms per MobileSAM click on one core). Here the image embedding and the
positional encoding are laid out once per frame as contiguous (1, HW, C)
tensors and the decoder's own sub-modules are called on them, so the
arithmetic is the decoder's and the weights are the checkpoint's; only the
memory layout differs. Only the mask tokens that are asked for are decoded.

The output upscaling (two 2x2, stride-2 transposed convolutions with a
channel LayerNorm and GELUs between) acts on each pixel separately, so it is
done as two matrix products on pixel rows kept in sub-pixel order; only the
final one-channel masks are shuffled back into image order (the profiled
upscaling went from 15.5 ms to a few ms per click).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def to_tokens(grid: torch.Tensor) -> torch.Tensor:
    """(1, C, H, W) -> contiguous (1, H*W, C)."""
    return grid.flatten(2).transpose(1, 2).contiguous()


def decode(
    decoder: nn.Module,
    image_tokens: torch.Tensor,
    pe_tokens: torch.Tensor,
    grid_hw: tuple[int, int],
    sparse: torch.Tensor,
    dense: torch.Tensor,
    multimask: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(low-res mask logits (1, k, 4H, 4W), predicted IoU (1, k)); k = 3 with ``multimask``, else 1."""
    out_tokens = torch.cat([decoder.iou_token.weight, decoder.mask_tokens.weight], dim=0)[None]
    tokens = torch.cat([out_tokens.to(sparse.dtype), sparse], dim=1)
    keys = image_tokens + to_tokens(dense)
    queries = tokens
    transformer = decoder.transformer
    for layer in transformer.layers:
        queries, keys = _block(layer, queries, keys, tokens, pe_tokens)
    attn = attention(transformer.final_attn_token_to_image, queries + tokens, keys + pe_tokens, keys)
    queries = transformer.norm_final_attn(queries + attn)

    chosen = range(1, decoder.num_mask_tokens) if multimask else range(0, 1)
    hyper = torch.stack([decoder.output_hypernetworks_mlps[i](queries[:, 1 + i, :]) for i in chosen], dim=1)
    iou = decoder.iou_prediction_head(queries[:, 0, :])[:, list(chosen)]
    h, w = grid_hw
    if _is_standard_upscaling(decoder.output_upscaling):
        return upscaled_masks(decoder.output_upscaling, keys, hyper, h, w), iou
    grid = keys.transpose(1, 2).reshape(1, keys.shape[2], h, w)
    upscaled = decoder.output_upscaling(grid)
    b, c, uh, uw = upscaled.shape
    masks = (hyper @ upscaled.reshape(b, c, uh * uw)).reshape(b, len(chosen), uh, uw)
    return masks, iou


def attention(mod: nn.Module, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """SAM's multi-head ``Attention`` (projections, scaled dot product, output projection) through PyTorch's fused kernel."""
    q, k, v = mod.q_proj(q), mod.k_proj(k), mod.v_proj(v)
    b, nq, c = q.shape
    heads = mod.num_heads

    def split(x: torch.Tensor) -> torch.Tensor:
        return x.view(b, x.shape[1], heads, c // heads).transpose(1, 2)

    out = F.scaled_dot_product_attention(split(q), split(k), split(v))
    return mod.out_proj(out.transpose(1, 2).reshape(b, nq, c))


def _block(layer: nn.Module, queries: torch.Tensor, keys: torch.Tensor, query_pe: torch.Tensor, key_pe: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One two-way attention block: token self-attention, tokens -> image, token MLP, image -> tokens."""
    if layer.skip_first_layer_pe:
        queries = attention(layer.self_attn, queries, queries, queries)
    else:
        q = queries + query_pe
        queries = queries + attention(layer.self_attn, q, q, queries)
    queries = layer.norm1(queries)
    k = keys + key_pe
    queries = layer.norm2(queries + attention(layer.cross_attn_token_to_image, queries + query_pe, k, keys))
    queries = layer.norm3(queries + layer.mlp(queries))
    keys = layer.norm4(keys + attention(layer.cross_attn_image_to_token, k, queries + query_pe, queries))
    return queries, keys


def _is_standard_upscaling(seq: nn.Module) -> bool:
    if not isinstance(seq, nn.Sequential) or len(seq) != 5:
        return False
    convs = (seq[0], seq[3])
    return (
        all(isinstance(c, nn.ConvTranspose2d) and tuple(c.kernel_size) == (2, 2) and tuple(c.stride) == (2, 2) and tuple(c.padding) == (0, 0) and c.groups == 1 for c in convs)
        and hasattr(seq[1], "eps") and hasattr(seq[1], "weight")
    )


def _as_matrix(conv: nn.ConvTranspose2d) -> tuple[torch.Tensor, torch.Tensor]:
    """(Cin, 4*Cout) weight in (a, b, cout) column order, and the matching bias."""
    wt = conv.weight  # (Cin, Cout, 2, 2)
    cin, cout = wt.shape[:2]
    mat = wt.permute(0, 2, 3, 1).reshape(cin, 4 * cout)
    bias = conv.bias.repeat(4) if conv.bias is not None else torch.zeros(4 * cout, dtype=wt.dtype, device=wt.device)
    return mat, bias


def upscaled_masks(seq: nn.Sequential, keys: torch.Tensor, hyper: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """``hyper @ output_upscaling(grid)`` for a (1, h*w, C) token tensor, as (1, k, 4h, 4w)."""
    conv1, norm, act1, conv2, act2 = seq
    m1, b1 = _as_matrix(conv1)
    m2, b2 = _as_matrix(conv2)
    c1, c2 = conv1.out_channels, conv2.out_channels
    x = torch.addmm(b1, keys[0], m1).reshape(-1, c1)  # rows: (i, j, a1, b1)
    x = act1(torch.nn.functional.layer_norm(x, (c1,), norm.weight, norm.bias, norm.eps))
    x = act2(torch.addmm(b2, x, m2).reshape(-1, c2))  # rows: (i, j, a1, b1, a2, b2)
    k = hyper.shape[1]
    masks = x @ hyper[0].transpose(0, 1)  # (rows, k)
    masks = masks.reshape(h, w, 2, 2, 2, 2, k).permute(6, 0, 2, 4, 1, 3, 5).reshape(1, k, 4 * h, 4 * w)
    return masks
