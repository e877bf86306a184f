"""tnseg-med as an automatic segmenter: frames in, nodule probability maps at frame size out.

The frame's LiteMedSAM embedding is the expensive part. The predictor takes
an ``embed`` function so that the editing session hands in its refiner's
cached embeddings (one encoder pass per frame serves the automatic mask, the
box and every click); without one it runs its own encoder (a CLI run).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from tnseg_desktop.errors import UserFacingError
from tnseg_desktop.model import litemedsam as lms
from tnseg_desktop.model.tnseg_med import ARCH, TnsegMed, check_config

Embed = Callable[[np.ndarray], np.ndarray]


class TnsegMedWeightsError(UserFacingError):
    pass


def read_med_metadata(path: Path) -> dict:
    """The file's metadata, checked before any network is built (a weights file is untrusted input)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
    except Exception as exc:  # safetensors raises several types for a damaged header
        raise TnsegMedWeightsError(f"is not a readable safetensors file ({exc}).", str(path)) from None
    if meta.get("arch") != ARCH:
        raise TnsegMedWeightsError(f"is not a {ARCH} weights file (its arch is {meta.get('arch')!r}).", str(path))
    try:
        meta["config"] = check_config(json.loads(meta.get("config", "{}")))
    except (ValueError, TypeError) as exc:
        raise TnsegMedWeightsError(f"has settings outside what {ARCH} allows: {exc}.", str(path)) from None
    return meta


def load_med_net(path: Path, device: torch.device | str = "cpu") -> tuple[TnsegMed, dict]:
    from tnseg_desktop.model.safe_load import load_state_dict

    meta = read_med_metadata(path)
    net = TnsegMed(meta["config"])
    state = load_state_dict(path)
    own = net.state_dict()
    if set(state) != set(own) or any(tuple(state[k].shape) != tuple(own[k].shape) for k in own):
        raise TnsegMedWeightsError(f"does not fit the {ARCH} network its settings describe.", str(path))
    net.load_state_dict(state, strict=True)
    return net.to(device).eval(), meta


class TnsegMedPredictor:
    """``AutoSegmenter`` for tnseg-med."""

    name = ARCH

    def __init__(self, net: TnsegMed, device: torch.device | str = "cpu", embed: Embed | None = None, encoder: torch.nn.Module | None = None, bf16: bool | None = None, text_cond: torch.Tensor | None = None) -> None:
        self.net = net.eval()
        self.device = torch.device(device)
        self._embed = embed
        self._encoder = encoder
        if bf16 is None:
            from tnseg_desktop.model.device import cpu_has_native_bf16

            bf16 = self.device.type == "cpu" and cpu_has_native_bf16()
        self.bf16 = bool(bf16)
        self.text_cond = text_cond

    def set_embed(self, embed: Embed | None) -> None:
        self._embed = embed

    def with_condition(self, cond: torch.Tensor | None) -> "TnsegMedPredictor":
        """The same network conditioned on another text embedding (None: the learned default, the nodule)."""
        return TnsegMedPredictor(self.net, self.device, self._embed, self._encoder, self.bf16, cond)

    def embedding(self, frame: np.ndarray) -> np.ndarray:
        if self._embed is not None:
            return self._embed(frame)
        if self._encoder is None:
            model, _ = lms.load_litemedsam()
            self._encoder = model.image_encoder.to(self.device).eval()
        x, _ = lms.preprocess(frame)
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            emb = self._encoder(torch.from_numpy(x)[None].to(self.device))
        return emb[0].float().cpu().numpy()

    @torch.inference_mode()
    def logits_256(self, frames: Sequence[np.ndarray]) -> tuple[np.ndarray, list[tuple[int, int]]]:
        embs, imgs, hws = [], [], []
        for f in frames:
            x, hw = lms.preprocess(f)
            embs.append(self.embedding(f))
            imgs.append(x[:1])
            hws.append(hw)
        emb = torch.from_numpy(np.stack(embs)).to(self.device)
        img = torch.from_numpy(np.stack(imgs)).to(self.device)
        cond = None if self.text_cond is None else self.text_cond.to(self.device)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            out = self.net(emb, img, cond)
        return out.float()[:, 0].cpu().numpy(), hws

    def target_of(self, text: str) -> str:
        """The known target ``text`` names (``UnknownTarget`` when none)."""
        from tnseg_desktop.model.resolve import text_condition_for

        return text_condition_for(text)[0]

    def prob_map(self, frame: np.ndarray, text: str) -> np.ndarray:
        """Probability of what ``text`` names (a known target, by nearest paraphrase) at frame size.

        A phrase that names no known target raises ``UnknownTarget`` (one
        sentence saying which structures this model knows), and no map is made.
        """
        from tnseg_desktop.model.resolve import text_condition_for

        _, cond = text_condition_for(text)
        return self.with_condition(cond).auto_probs([frame])[0]

    def auto_probs(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        if not frames:
            return []
        logits, hws = self.logits_256(frames)
        out = []
        for lg, hw, f in zip(logits, hws, frames):
            full = lms.logits_to_frame(lg, hw, f.shape[:2])
            out.append(1.0 / (1.0 + np.exp(-full)))
        return out


def load_tnseg_med(path: Path, device: torch.device | str = "cpu", embed: Embed | None = None) -> TnsegMedPredictor:
    net, _ = load_med_net(path, device)
    return TnsegMedPredictor(net, device, embed=embed)
