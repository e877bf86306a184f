"""tnseg-med's SAM-decoder coarse branch: LiteMedSAM's own mask decoder, prompted by text instead of a box.

The text condition becomes the decoder's sparse prompt tokens (MedCLIP-SAMv2's
"text -> SAM prompt", learned end to end instead of through a saliency map),
and the decoder's two-way transformer reads the frozen embedding the way it
was pretrained to. Its output (the 32-channel upscaled embedding and the mask
logits, both at 256 px) is what the fusion head and the fine branch refine.

Starting point (``init_from``): the decoder, the positional-encoding matrix and
the no-mask embedding are copied from a LiteMedSAM model, and the prompt
tokens start as that model's embedding of a whole-image box, so the first
step already proposes "the object in this frame".
"""

from __future__ import annotations

import torch
from torch import nn

from tnseg_desktop.model.sam_adapter import build_mask_decoder, build_position_embedding

EMBED_GRID = 64
PROMPT_TOKENS = 2  # a box is two corner tokens


class SamCoarse(nn.Module):
    def __init__(self, cond_dim: int, embed_dim: int = 256) -> None:
        super().__init__()
        self.decoder = build_mask_decoder()
        self.pe = build_position_embedding()
        self.no_mask = nn.Parameter(torch.zeros(embed_dim))
        self.prompt = nn.Linear(cond_dim, PROMPT_TOKENS * embed_dim)
        nn.init.normal_(self.prompt.weight, std=0.01)
        nn.init.zeros_(self.prompt.bias)
        self.embed_dim = embed_dim
        self.out_channels = embed_dim // 8  # the decoder's upscaled embedding
        self._grid_src: torch.Tensor | None = None
        self._grid = torch.empty(0)

    @torch.no_grad()
    def init_from(self, sam: nn.Module) -> None:
        """Copy a LiteMedSAM model's decoder, positional encoding and no-mask embedding; prompt tokens = a whole-image box."""
        self.decoder.load_state_dict(sam.mask_decoder.state_dict())
        self.pe.positional_encoding_gaussian_matrix.copy_(sam.prompt_encoder.pe_layer.positional_encoding_gaussian_matrix)
        self.no_mask.copy_(sam.prompt_encoder.no_mask_embed.weight[0])
        size = float(sam.prompt_encoder.input_image_size[0])
        box = torch.tensor([[0.0, 0.0, size - 1, size - 1]])
        sparse, _ = sam.prompt_encoder(points=None, boxes=box, masks=None)
        self.prompt.bias.copy_(sparse.reshape(-1))

    def grid_encoding(self) -> torch.Tensor:
        """(1, 256, 64, 64): the positional encoding of the embedding grid, in float32 (computed once per weights).

        SAM's random-Fourier encoding of the grid cell centres in [-1, 1];
        kept in float32 even when the network runs in bf16, and cached because
        it depends only on a matrix that is never trained.
        """
        m = self.pe.positional_encoding_gaussian_matrix
        if self._grid_src is None or self._grid_src.device != m.device or not torch.equal(self._grid_src, m.float()):
            centres = (torch.arange(EMBED_GRID, device=m.device, dtype=torch.float32) + 0.5) / EMBED_GRID * 2 - 1
            yy, xx = torch.meshgrid(centres, centres, indexing="ij")
            proj = 2 * torch.pi * (torch.stack([xx, yy], dim=-1) @ m.float())
            self._grid = torch.cat([proj.sin(), proj.cos()], dim=-1).permute(2, 0, 1)[None]
            self._grid_src = m.detach().float().clone()
        return self._grid

    def forward(self, embedding: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """embedding (B, 256, 64, 64), cond (B, cond_dim) -> upscaled features (B, 32, 256, 256) and mask logits (B, 1, 256, 256)."""
        b = embedding.shape[0]
        d = self.decoder
        sparse = self.prompt(cond).view(b, PROMPT_TOKENS, self.embed_dim)
        out_tokens = torch.cat([d.iou_token.weight, d.mask_tokens.weight], dim=0)[None].expand(b, -1, -1)
        tokens = torch.cat([out_tokens.to(sparse.dtype), sparse], dim=1)
        src = embedding + self.no_mask.to(embedding.dtype)[None, :, None, None]
        pos = self.grid_encoding().to(device=src.device, dtype=src.dtype)
        hs, keys = d.transformer(src, pos, tokens)
        grid = keys.transpose(1, 2).reshape(b, self.embed_dim, EMBED_GRID, EMBED_GRID)
        upscaled = d.output_upscaling(grid)
        # the first mask token is the decoder's single-mask output
        hyper = d.output_hypernetworks_mlps[0](hs[:, 1])
        logits = torch.einsum("bc,bchw->bhw", hyper, upscaled)[:, None]
        return upscaled, logits
