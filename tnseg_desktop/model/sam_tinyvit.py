"""TinyViT image encoder of MobileSAM, written so that ``mobile_sam.pt`` loads into it.

Layout (facts from the MobileSAM paper and its released checkpoint): a stem of
two stride-2 3x3 conv+BN (1/4 resolution), a stage of MBConv blocks, then three
stages of windowed-attention blocks, each stage but the last ending in a
conv "patch merging" (1x1 conv, depthwise 3x3, 1x1 conv, each with BN). The
merge into the last stage keeps the resolution, so a 1024 input ends at 64x64
(SAM's 1/16) and a neck (1x1 conv, LayerNorm2d, 3x3 conv, LayerNorm2d) maps it
to SAM's 256-channel image embedding. Attention uses a learned bias per head
and per absolute (row, col) offset inside a window; q, k and v are packed per
head in the qkv projection. The classification head of the ImageNet model is
kept (unused) only because the checkpoint stores it.

Parameter names follow the checkpoint's ``image_encoder.*`` keys exactly.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class ConvBN(nn.Sequential):
    """Conv without bias followed by BatchNorm (keys ``c.*`` and ``bn.*``)."""

    def __init__(self, cin: int, cout: int, kernel: int = 1, stride: int = 1, groups: int = 1, bn_weight: float = 1.0) -> None:
        super().__init__()
        self.add_module("c", nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False))
        bn = nn.BatchNorm2d(cout)
        nn.init.constant_(bn.weight, bn_weight)
        nn.init.zeros_(bn.bias)
        self.add_module("bn", bn)


class Stem(nn.Module):
    """Patch embedding: MobileSAM's two 3x3 stride-2 conv+BN (1/4), or LiteMedSAM's two 1x1 stride-1 (full size)."""

    def __init__(self, cin: int, dim: int, stride: int = 4) -> None:
        super().__init__()
        if stride == 4:
            first, second = ConvBN(cin, dim // 2, 3, 2), ConvBN(dim // 2, dim, 3, 2)
        elif stride == 1:
            first, second = ConvBN(cin, dim // 2, 1, 1), ConvBN(dim // 2, dim, 1, 1)
        else:
            raise ValueError(f"TinyViT stem stride must be 4 (MobileSAM) or 1 (LiteMedSAM), not {stride}")
        self.seq = nn.Sequential(first, nn.GELU(), second)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.seq(x)


class MBConv(nn.Module):
    def __init__(self, dim: int, expand: float) -> None:
        super().__init__()
        hidden = int(dim * expand)
        self.conv1 = ConvBN(dim, hidden)
        self.act1 = nn.GELU()
        self.conv2 = ConvBN(hidden, hidden, 3, groups=hidden)
        self.act2 = nn.GELU()
        self.conv3 = ConvBN(hidden, dim, bn_weight=0.0)
        self.act3 = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act2(self.conv2(self.act1(self.conv1(x))))
        return self.act3(x + self.conv3(y))


class PatchMerging(nn.Module):
    """(B, C, H, W) or tokens (B, H*W, C) -> tokens (B, H'*W', C_out)."""

    def __init__(self, resolution: tuple[int, int], dim: int, out_dim: int, stride: int) -> None:
        super().__init__()
        self.resolution = resolution
        self.conv1 = ConvBN(dim, out_dim)
        self.conv2 = ConvBN(out_dim, out_dim, 3, stride, groups=out_dim)
        self.conv3 = ConvBN(out_dim, out_dim)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 3:
            h, w = self.resolution
            x = x.transpose(1, 2).reshape(x.shape[0], -1, h, w)
        x = self.act(self.conv1(x))
        x = self.act(self.conv2(x))
        x = self.conv3(x)
        return x.flatten(2).transpose(1, 2)


class WindowAttention(nn.Module):
    def __init__(self, dim: int, heads: int, window: int) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.scale = self.head_dim**-0.5
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        # one bias per |d_row|, |d_col| pair; the checkpoint numbers them row-major
        self.attention_biases = nn.Parameter(torch.zeros(heads, window * window))
        rows = torch.arange(window).repeat_interleave(window)
        cols = torch.arange(window).repeat(window)
        idx = (rows[:, None] - rows[None, :]).abs() * window + (cols[:, None] - cols[None, :]).abs()
        self.register_buffer("bias_index", idx, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(self.norm(x)).view(b, n, self.heads, 3 * self.head_dim).permute(0, 2, 1, 3)
        q, k, v = qkv.split(self.head_dim, dim=-1)
        bias = self.attention_biases[:, self.bias_index]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype), scale=self.scale)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(self.norm(x))))


class TinyViTBlock(nn.Module):
    def __init__(self, dim: int, resolution: tuple[int, int], heads: int, window: int, mlp_ratio: float) -> None:
        super().__init__()
        self.resolution = resolution
        self.window = window
        self.attn = WindowAttention(dim, heads, window)
        self.local_conv = ConvBN(dim, dim, 3, groups=dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def _windowed(self, x: torch.Tensor) -> torch.Tensor:
        b, _, c = x.shape
        h, w = self.resolution
        ws = self.window
        grid = x.view(b, h, w, c)
        pad_b, pad_r = (-h) % ws, (-w) % ws
        if pad_b or pad_r:
            grid = F.pad(grid, (0, 0, 0, pad_r, 0, pad_b))
        ph, pw = h + pad_b, w + pad_r
        nh, nw = ph // ws, pw // ws
        win = grid.view(b, nh, ws, nw, ws, c).transpose(2, 3).reshape(b * nh * nw, ws * ws, c)
        win = self.attn(win)
        grid = win.view(b, nh, nw, ws, ws, c).transpose(2, 3).reshape(b, ph, pw, c)
        return grid[:, :h, :w].reshape(b, h * w, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        h, w = self.resolution
        x = x + self._windowed(x)
        x = self.local_conv(x.transpose(1, 2).reshape(b, c, h, w)).view(b, c, n).transpose(1, 2)
        return x + self.mlp(x)


class Stage(nn.Module):
    def __init__(self, blocks: Sequence[nn.Module], downsample: nn.Module | None) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x if self.downsample is None else self.downsample(x)


class LayerNorm2d(nn.Module):
    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class TinyViT(nn.Module):
    """MobileSAM's image encoder: (B, 3, S, S) normalised image -> (B, out_chans, S/16, S/16).

    ``stem_stride=1`` with ``img_size=256`` and ``classifier=False`` is LiteMedSAM's
    encoder: the first stage runs at 256x256 and the embedding is (256, 64, 64);
    its checkpoint has no ImageNet head.
    """

    def __init__(
        self,
        img_size: int = 1024,
        in_chans: int = 3,
        embed_dims: Sequence[int] = (64, 128, 160, 320),
        depths: Sequence[int] = (2, 2, 6, 2),
        num_heads: Sequence[int] = (2, 4, 5, 10),
        window_sizes: Sequence[int] = (7, 7, 14, 7),
        mlp_ratio: float = 4.0,
        mbconv_expand_ratio: float = 4.0,
        num_classes: int = 1000,
        out_chans: int = 256,
        stem_stride: int = 4,
        classifier: bool = True,
    ) -> None:
        super().__init__()
        if len(embed_dims) != 4:
            raise ValueError("TinyViT has four stages")
        self.img_size = img_size
        self.patch_embed = Stem(in_chans, embed_dims[0], stem_stride)
        res = img_size // stem_stride
        self.layers = nn.ModuleList()
        for i, dim in enumerate(embed_dims):
            last = i == len(embed_dims) - 1
            # stages run at 1/4, 1/8, 1/16, 1/16: the merge into the last stage keeps the size
            stride = 1 if i == len(embed_dims) - 2 else 2
            down = None if last else PatchMerging((res, res), dim, embed_dims[i + 1], stride)
            if i == 0:
                blocks: list[nn.Module] = [MBConv(dim, mbconv_expand_ratio) for _ in range(depths[i])]
            else:
                blocks = [TinyViTBlock(dim, (res, res), num_heads[i], window_sizes[i], mlp_ratio) for _ in range(depths[i])]
            self.layers.append(Stage(blocks, down))
            if not last:
                res = (res - 1) // stride + 1
        self.out_resolution = res
        if classifier:
            self.norm_head = nn.LayerNorm(embed_dims[-1])
            self.head = nn.Linear(embed_dims[-1], num_classes) if num_classes > 0 else nn.Identity()
        self.neck = nn.Sequential(
            nn.Conv2d(embed_dims[-1], out_chans, 1, bias=False),
            LayerNorm2d(out_chans),
            nn.Conv2d(out_chans, out_chans, 3, padding=1, bias=False),
            LayerNorm2d(out_chans),
        )
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        for layer in self.layers:
            x = layer(x)
        b, _, c = x.shape
        r = self.out_resolution
        return self.neck(x.transpose(1, 2).reshape(b, c, r, r))
