"""SAM's prompt encoder + mask decoder run on a batch of different images, for training on cached embeddings.

``segment_anything``'s ``MaskDecoder`` assumes one image and many prompts (it
repeats the image embedding per prompt), so a batch of B frames with one
prompt set each is decoded here by calling the decoder's own sub-modules on
(B, C, H, W) embeddings directly: the same arithmetic, one prompt set per image.
"""

from __future__ import annotations

import torch
from torch import nn


def encode_prompts(
    prompt_encoder: nn.Module,
    points: tuple[torch.Tensor, torch.Tensor] | None,
    boxes: torch.Tensor | None,
    masks: torch.Tensor | None,
    batch: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(sparse (B, T, C), dense (B, C, H, W)); point labels -1 are padding (SAM's "not a point")."""
    sparse, dense = prompt_encoder(points=points, boxes=boxes, masks=masks)
    if sparse.shape[0] != batch:  # no points and no box: SAM gives one empty (1, 0, C)
        sparse = sparse.expand(batch, -1, -1)
    if dense.shape[0] != batch:
        dense = dense.expand(batch, -1, -1, -1)
    return sparse, dense


def decode_batch(decoder: nn.Module, image_pe: torch.Tensor, embeddings: torch.Tensor, sparse: torch.Tensor, dense: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(single-output low-res logits (B, 1, 4H, 4W), predicted IoU (B,)) for B images with one prompt set each."""
    b, c, h, w = embeddings.shape
    out_tokens = torch.cat([decoder.iou_token.weight, decoder.mask_tokens.weight], dim=0)
    tokens = torch.cat([out_tokens[None].expand(b, -1, -1), sparse], dim=1)
    src = embeddings + dense
    pos = image_pe.expand(b, -1, -1, -1)
    hs, src = decoder.transformer(src, pos, tokens)
    iou_out = hs[:, 0]
    mask_token = hs[:, 1]
    src = src.transpose(1, 2).reshape(b, c, h, w)
    up = decoder.output_upscaling(src)
    hyper = decoder.output_hypernetworks_mlps[0](mask_token)  # (B, C/8)
    bu, cu, hu, wu = up.shape
    masks = torch.bmm(hyper[:, None, :], up.reshape(bu, cu, hu * wu)).reshape(b, 1, hu, wu)
    iou = decoder.iou_prediction_head(iou_out)[:, 0]
    return masks, iou
