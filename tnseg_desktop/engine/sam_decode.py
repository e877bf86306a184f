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

The two cross-attentions between the few prompt tokens (T of them, about
8) and the H*W image tokens are folded (``fold_tokens_to_image``,
``fold_image_to_tokens``): with h heads, each head's score is bilinear in
the two sides, so the projection of the image side (H*W x C x D, D = 128) is
replaced by one product with an h*T-column matrix built from the tokens, and
the value and output projections fold the same way on the token side. The
image side then costs two (H*W x C x h*T) products per attention instead of
two (H*W x C x D) projections plus a fused attention kernel on 16-wide heads
(profiled: 21 ms of a 46 ms MobileSAM click). It is used while h*T <= D,
i.e. up to about ten clicks; beyond that the plain path is cheaper.
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
    fold: bool | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(low-res mask logits (1, k, 4H, 4W), predicted IoU (1, k)); k = 3 with ``multimask``, else 1.

    ``dense`` is the prompt encoder's dense embedding as a (1, C, H, W) grid or
    already token-major, (1, H*W, C) or (1, 1, C) (see ``dense_tokens``).

    ``fold`` picks the folded cross-attentions (module docstring); None decides by cost.
    """
    out_tokens = torch.cat([decoder.iou_token.weight, decoder.mask_tokens.weight], dim=0)[None]
    tokens = torch.cat([out_tokens.to(sparse.dtype), sparse], dim=1)
    keys = image_tokens + (to_tokens(dense) if dense.dim() == 4 else dense)
    queries = tokens
    transformer = decoder.transformer
    if fold is None:
        fold = folding_pays(transformer.final_attn_token_to_image, tokens.shape[1])
    t2i = fold_tokens_to_image if fold else attention
    for layer in transformer.layers:
        queries, keys = _block(layer, queries, keys, tokens, pe_tokens, fold)
    attn = t2i(transformer.final_attn_token_to_image, queries + tokens, keys + pe_tokens, keys)
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


def dense_tokens(prompt_encoder: nn.Module, mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor:
    """The prompt encoder's dense embedding, token-major: (1, 1, C) without a mask prompt, else (1, H*W, C).

    Without a mask it is one learned vector (broadcast, nothing to lay out);
    with one, the last layer of the mask downscaling is a 1x1 convolution, so
    it is applied as a matrix product on token rows instead of transposing
    the 256-channel grid on every click.
    """
    if mask is None:
        return prompt_encoder.no_mask_embed.weight.to(dtype).view(1, 1, -1)
    seq = prompt_encoder.mask_downscaling
    last = seq[-1]
    if not (isinstance(last, nn.Conv2d) and tuple(last.kernel_size) == (1, 1) and tuple(last.stride) == (1, 1) and last.groups == 1):
        return to_tokens(seq(mask)).to(dtype)
    hidden = to_tokens(seq[:-1](mask))  # (1, HW, 16)
    weight = last.weight.view(last.out_channels, last.in_channels).to(dtype)
    bias = None if last.bias is None else last.bias.to(dtype)
    return F.linear(hidden.to(dtype), weight, bias)


def attention(mod: nn.Module, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """SAM's multi-head ``Attention`` (projections, scaled dot product, output projection) through PyTorch's fused kernel."""
    q, k, v = mod.q_proj(q), mod.k_proj(k), mod.v_proj(v)
    b, nq, c = q.shape
    heads = mod.num_heads

    def split(x: torch.Tensor) -> torch.Tensor:
        return x.view(b, x.shape[1], heads, c // heads).transpose(1, 2)

    out = F.scaled_dot_product_attention(split(q), split(k), split(v))
    return mod.out_proj(out.transpose(1, 2).reshape(b, nq, c))


def folding_pays(mod: nn.Module, n_tokens: int) -> bool:
    """Folded cross-attention is cheaper while heads x tokens stays within the attention width."""
    return mod.num_heads * n_tokens <= mod.q_proj.out_features


def _linear32(lin: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """A Linear on the few token rows in float32, whatever the decoder's dtype."""
    return F.linear(x.float(), lin.weight.float(), None if lin.bias is None else lin.bias.float())


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(T, D) -> (heads, T, D / heads)."""
    t, d = x.shape
    return x.view(t, heads, d // heads).transpose(0, 1)


def fold_tokens_to_image(mod: nn.Module, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``attention(mod, q, k, v)`` for few token queries ``q`` (1, T, C) over image tokens ``k``, ``v`` (1, N, C).

    Head j's scores are s * Q_j Wk_j k^T (the key bias adds a constant per row,
    which softmax ignores), and since each row of P sums to one,
    P_j (v Wv_j^T + bv_j) = (P_j v) Wv_j^T + bv_j: the image side only meets
    (h*T, C) matrices.
    """
    heads = mod.num_heads
    dtype = q.dtype
    qh = _heads(_linear32(mod.q_proj, q[0]), heads)  # (h, T, d) in float32: small
    d = qh.shape[-1]
    wk = mod.k_proj.weight.float().view(heads, d, -1)  # (h, d, C)
    scores_w = (torch.matmul(qh, wk) * d**-0.5).reshape(-1, wk.shape[-1]).to(dtype)  # (h*T, C)
    probs = torch.mm(scores_w, k[0].t()).softmax(dim=-1)  # (h*T, N)
    pooled = torch.mm(probs, v[0]).float().view(heads, qh.shape[1], -1)  # (h, T, C)
    wv = mod.v_proj.weight.float().view(heads, d, -1)
    out = torch.matmul(pooled, wv.transpose(1, 2)) + mod.v_proj.bias.float().view(heads, 1, d)  # (h, T, d)
    out = out.transpose(0, 1).reshape(qh.shape[1], heads * d)
    return _linear32(mod.out_proj, out).to(dtype)[None]


def _group_softmax(scores: torch.Tensor, groups: int, width: int) -> torch.Tensor:
    """Softmax over each run of ``width`` columns, in float32 (torch's kernel is slow on rows of 8)."""
    x = scores.float().view(-1, groups, width)
    e = (x - x.amax(dim=-1, keepdim=True)).exp_()
    return (e / e.sum(dim=-1, keepdim=True)).view(-1, groups * width)


def fold_image_to_tokens(mod: nn.Module, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``attention(mod, q, k, v)`` for image-token queries ``q`` (1, N, C) over few tokens ``k``, ``v`` (1, T, C).

    Head j's scores are s * (q Wq_j^T + bq_j) K_j^T = q A_j + c_j, and its
    output through out_proj is P_j (V_j Wo_j^T): two (N x C x h*T) products.
    """
    heads = mod.num_heads
    dtype = q.dtype
    kh = _heads(_linear32(mod.k_proj, k[0]), heads)  # (h, T, d)
    vh = _heads(_linear32(mod.v_proj, v[0]), heads)
    h, t, d = kh.shape
    scale = d**-0.5
    wq = mod.q_proj.weight.float().view(heads, d, -1)  # (h, d, C)
    a = (torch.matmul(kh, wq) * scale).reshape(h * t, -1)  # (h*T, C)
    c = (torch.matmul(kh, mod.q_proj.bias.float().view(heads, d, 1)) * scale).reshape(h * t)
    scores = torch.addmm(c.to(dtype), q[0], a.t().to(dtype))  # (N, h*T)
    probs = _group_softmax(scores, h, t).to(dtype)
    wo = mod.out_proj.weight.float().view(-1, heads, d).transpose(0, 1)  # (h, C, d)
    b = torch.matmul(vh, wo.transpose(1, 2)).reshape(h * t, -1)  # (h*T, C)
    return torch.addmm(mod.out_proj.bias.to(dtype), probs, b.to(dtype))[None]


def _block(layer: nn.Module, queries: torch.Tensor, keys: torch.Tensor, query_pe: torch.Tensor, key_pe: torch.Tensor, fold: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """One two-way attention block: token self-attention, tokens -> image, token MLP, image -> tokens."""
    t2i, i2t = (fold_tokens_to_image, fold_image_to_tokens) if fold else (attention, attention)
    if layer.skip_first_layer_pe:
        queries = attention(layer.self_attn, queries, queries, queries)
    else:
        q = queries + query_pe
        queries = queries + attention(layer.self_attn, q, q, queries)
    queries = layer.norm1(queries)
    k = keys + key_pe
    queries = layer.norm2(queries + t2i(layer.cross_attn_token_to_image, queries + query_pe, k, keys))
    queries = layer.norm3(queries + layer.mlp(queries))
    keys = layer.norm4(keys + i2t(layer.cross_attn_image_to_token, k, queries + query_pe, queries))
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
