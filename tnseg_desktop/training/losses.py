"""Dice + binary cross-entropy on logits."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def dice_bce_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    logits = logits.float()
    bce = F.binary_cross_entropy_with_logits(logits, target)
    prob = torch.sigmoid(logits).flatten(1)
    t = target.flatten(1)
    inter = (prob * t).sum(1)
    dice = (2 * inter + smooth) / (prob.sum(1) + t.sum(1) + smooth)
    return bce + (1 - dice).mean()


def masked_dice_bce_loss(logits: torch.Tensor, target: torch.Tensor, area: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """Dice + BCE counted only where ``area`` is 1 (the unpadded part of a padded input), per sample then the mean."""
    logits = logits.float()
    dims = tuple(range(1, logits.ndim))
    bce = (F.binary_cross_entropy_with_logits(logits, target, reduction="none") * area).sum(dims) / area.sum(dims).clamp_min(1.0)
    prob = torch.sigmoid(logits) * area
    t = target * area
    dice = (2 * (prob * t).sum(dims) + smooth) / (prob.sum(dims) + t.sum(dims) + smooth)
    return (bce + 1 - dice).mean()
