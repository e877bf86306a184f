"""CLIP-TNseg: frozen CLIP ViT + CLIPSeg-style coarse branch + residual U-Net fine branch.

The network of the CLIP-TNseg paper (DESIGN.md section 2):

- coarse branch (the reference's ``CGB``): activations of ViT layers 3, 7, 9
  (0-based block indices) with the position embedding interpolated to the
  input's token grid (22x22 for 352 input), each reduced to 64 channels and
  summed deepest-first, FiLM-modulated by the 512-d text embedding before the
  first 64-d transformer block, then a 16x16 stride-16 transposed conv back to
  full resolution with 64 channels;
- fine branch (``FGB``): :class:`~tnseg_desktop.model.unet.ResidualUNet` on the
  same normalised image, 32 channels at full resolution;
- head (``PH``): concatenation (64 + 32) -> two residual blocks -> 1x1 conv.

The open_clip model is passed in already built (from the user's OpenAI file,
or a tiny random one in tests) and is used for both the image and the text
tower: it is held once and never trained. Only the non-CLIP parameters are
saved (:meth:`ClipTnseg.trainable_state_dict`).
"""

from __future__ import annotations

import random
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from tnseg_desktop.model.unet import ResidualUNet, prediction_head

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INPUT_SIZE = 352
DEFAULT_PROMPT = "thyroid nodule"
DEFAULT_EXTRACT_LAYERS = (3, 7, 9)
CLIP_PREFIX = "clip."


class CoarseBranch(nn.Module):
    """CLIPSeg-style decoder over ViT activations; names follow the reference ``CGB``."""

    def __init__(self, vit_width: int, cond_dim: int, patch_size: int, depth: int, reduce_dim: int = 64, n_heads: int = 4, out_channels: int = 64) -> None:
        super().__init__()
        self.film_mul = nn.Linear(cond_dim, reduce_dim)
        self.film_add = nn.Linear(cond_dim, reduce_dim)
        self.reduces = nn.ModuleList([nn.Linear(vit_width, reduce_dim) for _ in range(depth)])
        # torch's defaults (feed-forward 2048, dropout 0.1, ReLU, post-norm) are what the reference trained with
        self.blocks = nn.ModuleList([nn.TransformerEncoderLayer(d_model=reduce_dim, nhead=n_heads, batch_first=True) for _ in range(depth)])
        self.trans_conv = nn.ConvTranspose2d(reduce_dim, out_channels, patch_size, stride=patch_size)
        self.out_channels = out_channels

    def forward(self, activations: Sequence[torch.Tensor], cond: torch.Tensor, grid: tuple[int, int], cond_layer: int = 0) -> torch.Tensor:
        """activations: shallow-to-deep (B, 1 + H*W, width); cond: (B, cond_dim) -> (B, C, H*p, W*p)."""
        a: torch.Tensor | None = None
        for i, (activation, block, reduce) in enumerate(zip(reversed(activations), self.blocks, self.reduces)):
            a = reduce(activation) if a is None else reduce(activation) + a
            if i == cond_layer:
                a = self.film_mul(cond)[:, None, :] * a + self.film_add(cond)[:, None, :]
            a = block(a)
        assert a is not None
        tokens = a[:, 1:].transpose(1, 2)  # drop the class token -> (B, C, H*W)
        return self.trans_conv(tokens.reshape(tokens.shape[0], tokens.shape[1], grid[0], grid[1]))


def interpolated_position_embedding(pos: torch.Tensor, grid: tuple[int, int], new_grid: tuple[int, int]) -> torch.Tensor:
    """(1 + h*w, C) -> (1 + H*W, C): class slot kept, the patch grid resized bicubically."""
    if tuple(grid) == tuple(new_grid):
        return pos
    width = pos.shape[1]
    patches = pos[1:].T.reshape(1, width, grid[0], grid[1])
    patches = F.interpolate(patches, size=new_grid, mode="bicubic", align_corners=False)
    return torch.cat([pos[:1], patches.reshape(width, -1).T], dim=0)


class ClipTnseg(nn.Module):
    arch = "clip-tnseg"

    def __init__(self, clip_model: nn.Module, extract_layers: Sequence[int] = DEFAULT_EXTRACT_LAYERS, input_size: int = INPUT_SIZE, cond_layer: int = 0) -> None:
        super().__init__()
        visual = clip_model.visual
        n_blocks = len(visual.transformer.resblocks)
        if max(extract_layers) >= n_blocks:
            raise ValueError(f"extract layer {max(extract_layers)} does not exist in a {n_blocks}-block ViT")
        self.clip = clip_model
        for p in self.clip.parameters():
            p.requires_grad_(False)
        self.clip.eval()
        self.extract_layers = tuple(int(i) for i in extract_layers)
        self.cond_layer = cond_layer
        self.input_size = input_size
        patch = visual.conv1.kernel_size[0]
        self.patch_size = patch
        self.cond_dim = int(clip_model.text_projection.shape[1])
        self.coarse = CoarseBranch(vit_width=visual.conv1.out_channels, cond_dim=self.cond_dim, patch_size=patch, depth=len(self.extract_layers))
        self.fine = ResidualUNet(in_channels=3, base_channels=32)
        self.head = prediction_head(self.coarse.out_channels + self.fine.out_channels, hidden=64)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self._text_cache: dict[str, torch.Tensor] = {}

    # --- CLIP, frozen ---------------------------------------------------------------------

    def train(self, mode: bool = True) -> "ClipTnseg":
        super().train(mode)
        self.clip.eval()  # frozen: no dropout, whatever the rest of the network does
        return self

    def normalise(self, image01: torch.Tensor) -> torch.Tensor:
        """(B, 1 or 3, H, W) in [0, 1] -> ImageNet-normalised 3 channels (the paper's, not CLIP's own statistics)."""
        if image01.shape[1] == 1:
            image01 = image01.expand(-1, 3, -1, -1)
        return (image01 - self.mean) / self.std

    @torch.no_grad()
    def _vit_tokens(self, x: torch.Tensor, upto: int) -> tuple[list[torch.Tensor], torch.Tensor, tuple[int, int]]:
        """Run ViT blocks 0..upto; returns the extract-layer activations, the last tokens and the grid."""
        visual = self.clip.visual
        x = visual.conv1(x)
        grid = (x.shape[2], x.shape[3])
        x = x.flatten(2).transpose(1, 2)
        cls = visual.class_embedding.to(x.dtype).view(1, 1, -1).expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1)
        pos = interpolated_position_embedding(visual.positional_embedding, tuple(visual.grid_size), grid)
        x = visual.ln_pre(x + pos.to(x.dtype))
        batch_first = getattr(visual.transformer, "batch_first", True)
        activations = []
        for i, block in enumerate(visual.transformer.resblocks[: upto + 1]):
            x = block(x) if batch_first else block(x.transpose(0, 1)).transpose(0, 1)
            if i in self.extract_layers:
                activations.append(x)
        return activations, x, grid

    @torch.no_grad()
    def image_embedding(self, image_norm: torch.Tensor) -> torch.Tensor:
        """CLIP's pooled visual embedding (B, cond_dim) of normalised images, at their own size."""
        visual = self.clip.visual
        _, tokens, _ = self._vit_tokens(image_norm, len(visual.transformer.resblocks) - 1)
        pooled = visual.ln_post(tokens[:, 0])
        return pooled @ visual.proj if visual.proj is not None else pooled

    @torch.no_grad()
    def text_embedding(self, prompts: Sequence[str]) -> torch.Tensor:
        """(len(prompts), cond_dim); each prompt is encoded once and cached."""
        device = self.mean.device
        missing = [p for p in dict.fromkeys(prompts) if p not in self._text_cache]
        if missing:
            tokens = self._tokenize(missing).to(device)
            encoded = self.clip.encode_text(tokens).float()
            for prompt, vec in zip(missing, encoded):
                self._text_cache[prompt] = vec.detach().cpu()
        return torch.stack([self._text_cache[p] for p in prompts]).to(device)

    def _tokenize(self, prompts: list[str]) -> torch.Tensor:
        import open_clip

        context = int(getattr(self.clip, "context_length", 77))
        return open_clip.tokenize(prompts, context_length=context)

    # --- conditioning ------------------------------------------------------------------------

    def condition(
        self,
        prompts: str | Sequence[str],
        batch: int,
        support_images01: torch.Tensor | None = None,
        mix_probability: float = 0.5,
    ) -> torch.Tensor:
        """The FiLM conditioning vectors (batch, cond_dim).

        In training, with ``support_images01`` given (one per sample, e.g. an
        annotated frame with its nodule highlighted), a random share of the
        samples gets CLIPSeg's mix: ``a * text + (1 - a) * visual`` with ``a``
        uniform in [0, 1]; evaluation always uses the text alone.
        """
        prompt_list = [prompts] * batch if isinstance(prompts, str) else list(prompts)
        if len(prompt_list) != batch:
            raise ValueError(f"{len(prompt_list)} prompts for a batch of {batch}")
        cond = self.text_embedding(prompt_list)
        if support_images01 is None or not self.training:
            return cond
        visual = self.image_embedding(self.normalise(support_images01.to(cond.device, cond.dtype)))
        alpha = torch.rand(batch, 1, device=cond.device)
        use_mix = torch.tensor([random.random() < mix_probability for _ in range(batch)], device=cond.device)[:, None]
        return torch.where(use_mix, alpha * cond + (1 - alpha) * visual, cond)

    # --- forward ---------------------------------------------------------------------------

    def forward(
        self,
        image01: torch.Tensor,
        prompts: str | Sequence[str] = DEFAULT_PROMPT,
        support_images01: torch.Tensor | None = None,
        cond: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """image01: (B, 1|3, S, S) in [0, 1], S a multiple of the patch size and of 32 -> (B, 1, S, S) logits."""
        x = self.normalise(image01)
        if cond is None:
            cond = self.condition(prompts, x.shape[0], support_images01)
        activations, _, grid = self._vit_tokens(x, max(self.extract_layers))
        coarse = self.coarse([a.to(x.dtype) for a in activations], cond.to(x.dtype), grid, self.cond_layer)
        fine = self.fine(x)
        return self.head(torch.cat([coarse, fine], dim=1))

    # --- weights -----------------------------------------------------------------------------

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Everything but CLIP: what a CLIP-TNseg checkpoint holds."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith(CLIP_PREFIX)}

    def load_trainable_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Strict over the non-CLIP keys: every one must be present with its shape, and nothing else."""
        expected = self.trainable_state_dict()
        missing = sorted(set(expected) - set(state))
        unexpected = sorted(set(state) - set(expected))
        wrong = sorted(k for k in set(expected) & set(state) if tuple(expected[k].shape) != tuple(state[k].shape))
        if missing or unexpected or wrong:
            raise KeyError(
                "checkpoint does not fit clip-tnseg: "
                + "; ".join(
                    f"{label} {len(keys)} (e.g. {keys[0]})"
                    for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
                    if keys
                )
            )
        result = self.load_state_dict(state, strict=False)
        assert not result.unexpected_keys

