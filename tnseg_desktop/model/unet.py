"""The residual U-Net: CLIP-TNseg's fine-grained branch, and the body of tnseg-lite.

Structure (from the CLIP-TNseg paper and its reference layout, so that the
authors' ``FGB.*`` and head weights map onto it one to one): residual blocks
of GroupNorm(32) + SiLU + 3x3 conv, six levels with channels 32-32-64-64-128-128,
two blocks per level down and three up, strided-conv downsampling, nearest
upsampling + conv, and skip connections from every encoder stage.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn


class ResBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, groups: int = 32) -> None:
        super().__init__()
        self.in_layers = nn.Sequential(
            nn.GroupNorm(math.gcd(groups, in_channels), in_channels),
            nn.SiLU(),
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        )
        self.out_layers = nn.Sequential(
            nn.GroupNorm(math.gcd(groups, out_channels), out_channels),
            nn.SiLU(),
            nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1),
        )
        self.skip: nn.Module = nn.Identity() if in_channels == out_channels else nn.Conv2d(in_channels, out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out_layers(self.in_layers(x)) + self.skip(x)


class ResidualUNet(nn.Module):
    """Full-resolution feature extractor; output has ``base_channels`` channels at input size.

    The input side must be divisible by ``2 ** (len(channel_mults) - 1)``.
    """

    def __init__(
        self,
        in_channels: int = 3,
        base_channels: int = 32,
        channel_mults: Sequence[int] = (1, 1, 2, 2, 4, 4),
        blocks_per_level: int = 2,
    ) -> None:
        super().__init__()
        self.levels = len(channel_mults)
        self.enc_blocks = nn.ModuleList([nn.Conv2d(in_channels, base_channels, kernel_size=3, padding=1)])
        ch = base_channels
        skip_channels = [ch]
        for level, mult in enumerate(channel_mults):
            for _ in range(blocks_per_level):
                self.enc_blocks.append(nn.Sequential(ResBlock(ch, mult * base_channels)))
                ch = mult * base_channels
                skip_channels.append(ch)
            if level != self.levels - 1:
                self.enc_blocks.append(nn.Sequential(nn.Conv2d(ch, ch, kernel_size=3, padding=1, stride=2)))
                skip_channels.append(ch)

        self.middle_block = nn.Sequential(ResBlock(ch, ch), ResBlock(ch, ch))

        self.dec_blocks = nn.ModuleList()
        for level, mult in enumerate(reversed(channel_mults)):
            for block in range(blocks_per_level + 1):
                layers: list[nn.Module] = [ResBlock(ch + skip_channels.pop(), mult * base_channels)]
                ch = mult * base_channels
                if level < self.levels - 1 and block == blocks_per_level:
                    layers.append(nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(ch, ch, kernel_size=3, padding=1)))
                self.dec_blocks.append(nn.Sequential(*layers))
        self.out_channels = ch

    @property
    def size_multiple(self) -> int:
        return 2 ** (self.levels - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        h = x
        for module in self.enc_blocks:
            h = module(h)
            skips.append(h)
        h = self.middle_block(h)
        for module in self.dec_blocks:
            h = module(torch.cat([h, skips.pop()], dim=1))
        return h


def prediction_head(in_channels: int, hidden: int = 64, out_channels: int = 1) -> nn.Sequential:
    """Fusion head: two residual blocks and a 1x1 convolution to logits."""
    return nn.Sequential(ResBlock(in_channels, hidden), ResBlock(hidden, hidden), nn.Conv2d(hidden, out_channels, kernel_size=1))
