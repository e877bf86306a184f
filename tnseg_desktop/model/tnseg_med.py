"""tnseg-med: CLIP-TNseg's two-branch design on the frozen LiteMedSAM encoder (the automatic mask).

- Coarse-grained branch: the frozen encoder's 256x64x64 embedding (the same
  one every box and click of the frame uses), reduced to ``reduce_dim``
  channels by a 1x1 conv, conditioned by FiLM (a per-channel scale and shift
  computed from a text embedding, as CLIP-TNseg conditions its ViT features),
  a few residual blocks at 64x64, then transposed-conv upsampling x4 to the
  256 px working size.
- Fine-grained branch: the residual U-Net (``model/unet.py``) on the encoder's
  own 256 px input (min-max scaled, padded), small widths for a CPU.
- Fusion: concatenation, residual blocks, and a text-controlled 1x1 head (the
  CLIP-Driven Universal Model's way: the head's weights are generated from
  the text embedding, so one network serves several prompt-selected targets).

With no text the condition is a learned vector (``default_cond``): the
nodule. Only these parts are trained and saved; the encoder stays in its package.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from tnseg_desktop.model.tnseg_med_sam import SamCoarse
from tnseg_desktop.model.unet import ResBlock, ResidualUNet

ARCH = "tnseg-med"

# allowed ranges of every config field (a weights file's metadata is checked against these before building)
CONFIG_LIMITS: dict[str, tuple[int, int]] = {
    "embed_dim": (256, 256),
    "reduce_dim": (8, 256),
    "cond_dim": (8, 1024),
    "coarse_blocks": (0, 8),
    "base_channels": (4, 64),
    "head_hidden": (8, 128),
    "input_size": (256, 256),
    "work_size": (64, 256),
}
DEFAULT_CONFIG: dict[str, Any] = {
    "embed_dim": 256,
    "reduce_dim": 64,
    "cond_dim": 384,
    "coarse_blocks": 2,
    "base_channels": 8,
    "channel_mults": [1, 2, 2, 4],
    "head_hidden": 16,
    "input_size": 256,
    "work_size": 128,
    "coarse": "conv",
}
COARSE_KINDS = ("conv", "sam")  # conv: 1x1 reduce + residual blocks + upsampling; sam: LiteMedSAM's mask decoder (tnseg_med_sam)


def check_config(config: dict[str, Any]) -> dict[str, Any]:
    """The config with defaults filled in; a ValueError naming the field when a value is outside its range."""
    out = {**DEFAULT_CONFIG, **{k: v for k, v in config.items() if k in DEFAULT_CONFIG}}
    for key, (lo, hi) in CONFIG_LIMITS.items():
        value = out[key]
        if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
            raise ValueError(f"{key} = {value!r} is outside the allowed range {lo}..{hi}")
    if out["coarse"] not in COARSE_KINDS:
        raise ValueError(f"coarse = {out['coarse']!r} must be one of {', '.join(COARSE_KINDS)}")
    mults = out["channel_mults"]
    if not isinstance(mults, list) or not 2 <= len(mults) <= 5 or not all(isinstance(m, int) and 1 <= m <= 8 for m in mults):
        raise ValueError(f"channel_mults = {mults!r} must be 2 to 5 integers in 1..8")
    return out


class Film(nn.Module):
    """x * (1 + gamma(c)) + beta(c), per channel; starts as the identity."""

    def __init__(self, cond_dim: int, channels: int) -> None:
        super().__init__()
        self.proj = nn.Linear(cond_dim, 2 * channels)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.proj(cond).chunk(2, dim=1)
        return x * (1 + gamma[:, :, None, None]) + beta[:, :, None, None]


class TextHead(nn.Module):
    """A 1x1 conv whose weights and bias are generated from the condition (one set per sample)."""

    def __init__(self, cond_dim: int, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.gen = nn.Linear(cond_dim, channels + 1)
        nn.init.normal_(self.gen.weight, std=0.02)
        nn.init.zeros_(self.gen.bias)
        self.static = nn.Conv2d(channels, 1, 1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        params = self.gen(cond)
        w, b = params[:, : self.channels], params[:, self.channels :]
        dynamic = torch.einsum("bchw,bc->bhw", x, w)[:, None] + b[:, :, None, None]
        return self.static(x) + dynamic


class TnsegMed(nn.Module):
    arch = ARCH

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__()
        cfg = check_config(config or {})
        self.config = cfg
        self.input_size = cfg["input_size"]
        r, cond = cfg["reduce_dim"], cfg["cond_dim"]
        self.default_cond = nn.Parameter(torch.randn(cond) / math.sqrt(cond))
        self.work_size = cfg["work_size"]
        factor = self.work_size // 64
        if factor not in (1, 2, 4):
            raise ValueError("work_size must be 64, 128 or 256")
        self.sam: SamCoarse | None = None
        if cfg["coarse"] == "sam":
            self.film = Film(cond, cfg["embed_dim"])
            self.sam = SamCoarse(cond, cfg["embed_dim"])
            up = self.sam.out_channels + 1
        else:
            self.reduce = nn.Conv2d(cfg["embed_dim"], r, 1)
            self.film = Film(cond, r)
            self.coarse = nn.Sequential(*[ResBlock(r, r) for _ in range(cfg["coarse_blocks"])])
            up = max(8, r // 2)
            layers: list[nn.Module] = []
            ch = r
            while factor > 1:
                layers += [nn.ConvTranspose2d(ch, up, 2, stride=2), nn.GroupNorm(math.gcd(32, up), up), nn.SiLU()]
                ch, factor = up, factor // 2
            self.upsample = nn.Sequential(*layers) if layers else nn.Identity()
            up = ch
        self.fgb = ResidualUNet(in_channels=1, base_channels=cfg["base_channels"], channel_mults=cfg["channel_mults"], blocks_per_level=1)
        fused = up + self.fgb.out_channels
        h = cfg["head_hidden"]
        self.fuse = nn.Sequential(ResBlock(fused, h), ResBlock(h, h))
        self.head = TextHead(cond, h)
        if self.sam is not None:  # start as the decoder's own mask: the correction begins at zero
            nn.init.zeros_(self.head.static.weight)
            nn.init.zeros_(self.head.static.bias)

    def condition(self, cond: torch.Tensor | None, batch: int) -> torch.Tensor:
        """(B, cond_dim): the text embeddings given; None, or a row of zeros, selects the learned default (the nodule)."""
        default = self.default_cond[None].expand(batch, -1)
        if cond is None:
            return default
        if cond.ndim == 1:
            cond = cond[None]
        cond = cond.to(default.dtype).expand(batch, -1) if cond.shape[0] == 1 else cond.to(default.dtype)
        empty = (cond.abs().sum(1, keepdim=True) == 0).to(default.dtype)
        return empty * default + (1 - empty) * cond

    def forward(self, embedding: torch.Tensor, image01: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """embedding (B, 256, 64, 64), image01 (B, 1, S, S) the encoder's input (any S) -> (B, 1, 256, 256) logits.

        Both branches meet at ``work_size`` (128 by default: on a CPU, 256 px
        feature maps cost 4x as much and the mask's edge is then bilinear).
        """
        c = self.condition(cond, embedding.shape[0]).to(embedding.dtype)
        if image01.shape[-1] != self.work_size:
            image01 = F.interpolate(image01, size=(self.work_size, self.work_size), mode="area")
        fine = self.fgb(image01)
        if self.sam is not None:
            return self._forward_sam(embedding, fine, c)
        x = self.film(self.reduce(embedding), c)
        coarse = self.upsample(self.coarse(x))
        logits = self.head(self.fuse(torch.cat([coarse, fine], dim=1)), c)
        if self.work_size != self.input_size:
            logits = F.interpolate(logits, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)
        return logits

    def _forward_sam(self, embedding: torch.Tensor, fine: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """The decoder's mask plus a correction from its features fused with the fine branch (a residual refinement)."""
        assert self.sam is not None
        upscaled, sam_logits = self.sam(self.film(embedding, c), c)
        coarse = torch.cat([upscaled, sam_logits], dim=1)
        if coarse.shape[-1] != self.work_size:
            coarse = F.interpolate(coarse, size=(self.work_size, self.work_size), mode="area")
        correction = self.head(self.fuse(torch.cat([coarse, fine.to(coarse.dtype)], dim=1)), c)
        if correction.shape[-1] != sam_logits.shape[-1]:
            correction = F.interpolate(correction, size=sam_logits.shape[-2:], mode="bilinear", align_corners=False)
        logits = sam_logits + correction
        if logits.shape[-1] != self.input_size:
            logits = F.interpolate(logits, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)
        return logits
