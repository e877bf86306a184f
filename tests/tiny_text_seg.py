"""A tiny random text-conditioned network standing in for clip-tnseg in tests (no CLIP weights exist here)."""

from __future__ import annotations

import zlib

import numpy as np
import torch
from torch import nn


class TinyTextSeg(nn.Module):
    """Hashed-word text embedding FiLM-modulating two random convs, plus a brightness skip.

    The skip keeps the map tied to the image, so it has structure with random
    weights; ``brightness_centre`` is the grey level (0..1) the skip maps to 0.5.
    """

    def __init__(self, seed: int = 0, brightness_centre: float = 0.5) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.brightness_centre = brightness_centre
        self.words = nn.EmbeddingBag(64, 8)
        self.film = nn.Linear(8, 16)
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 1, 3, padding=1)

    @torch.no_grad()
    def prob_map(self, frame: np.ndarray, text: str) -> np.ndarray:
        ids = torch.tensor([[zlib.crc32(w.encode()) % 64 for w in text.lower().split()]])
        gamma, beta = self.film(self.words(ids)).chunk(2, dim=-1)
        x = torch.from_numpy(frame.astype(np.float32) / 255.0)[None, None]
        h = torch.relu(self.conv1(x)) * (1 + gamma[..., None, None]) + beta[..., None, None]
        logits = 0.5 * self.conv2(h) + 12.0 * (x - self.brightness_centre)
        return torch.sigmoid(logits)[0, 0].numpy()
