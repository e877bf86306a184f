"""tnseg-lite: CLIP-TNseg's fine-grained branch and head alone, plus interaction channels.

Input channels: the ImageNet-normalised RGB frame (grayscale repeated), then
a prior mask, a positive-click map and a negative-click map. With the three
extra channels all zero the network gives the automatic mask; with them it
refines. Output: one channel of nodule logits at input resolution.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from tnseg_desktop.model.unet import ResidualUNet, prediction_head

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
EXTRA_CHANNELS = 3  # prior mask, positive clicks, negative clicks


class TnsegLite(nn.Module):
    arch = "tnseg-lite"

    def __init__(self, base_channels: int = 32, channel_mults: tuple[int, ...] = (1, 1, 2, 2, 4, 4), head_hidden: int = 64, input_size: int = 192) -> None:
        super().__init__()
        self.config: dict[str, Any] = {
            "base_channels": base_channels,
            "channel_mults": list(channel_mults),
            "head_hidden": head_hidden,
            "input_size": input_size,
        }
        self.input_size = input_size
        self.fgb = ResidualUNet(in_channels=3 + EXTRA_CHANNELS, base_channels=base_channels, channel_mults=channel_mults)
        self.head = prediction_head(self.fgb.out_channels, hidden=head_hidden)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "TnsegLite":
        return cls(
            base_channels=int(config.get("base_channels", 32)),
            channel_mults=tuple(config.get("channel_mults", (1, 1, 2, 2, 4, 4))),
            head_hidden=int(config.get("head_hidden", 64)),
            input_size=int(config.get("input_size", 192)),
        )

    def normalise(self, image01: torch.Tensor) -> torch.Tensor:
        """(B, 1 or 3, H, W) in [0, 1] -> ImageNet-normalised 3 channels."""
        if image01.shape[1] == 1:
            image01 = image01.expand(-1, 3, -1, -1)
        return (image01 - self.mean) / self.std

    def forward(self, image01: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        """image01: (B, 1|3, H, W) in [0, 1]; extra: (B, 3, H, W) prior/pos/neg maps or None."""
        x = self.normalise(image01)
        if extra is None:
            extra = x.new_zeros(x.shape[0], EXTRA_CHANNELS, x.shape[2], x.shape[3])
        return self.head(self.fgb(torch.cat([x, extra.to(x.dtype)], dim=1)))
