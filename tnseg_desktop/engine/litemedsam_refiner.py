"""LiteMedSAM as the refiner: boxes, clicks and the current mask on one cached 256x64x64 embedding per frame.

Everything prompt-related is :class:`SamRefiner`'s; what differs is the
preprocessing (longest side to 256, per-image min-max to [0, 1], no mean/std,
see ``model/litemedsam.py``) and the precision of the encoder pass.

Both variants (``litemedsam`` and ``litemedsam-thyroid``) share the stock
encoder, so their embeddings are keyed by the encoder file's sha256 and the
encoder precision only: switching between them, or the automatic mask of
``tnseg-med``, reuses every embedding already computed.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import nn

from tnseg_desktop.engine.embedding_cache import EmbeddingCache
from tnseg_desktop.engine.sam_refiner import SamRefiner
from tnseg_desktop.model import litemedsam as lms
from tnseg_desktop.model.device import cpu_has_native_bf16

PRECISIONS = ("fp32", "bf16")


def default_encoder_precision(device: torch.device) -> str:
    """bf16 autocast on a CPU with native bf16 (masks agree with fp32, see bench/interactive.py), else fp32.

    ``TNSEG_ENCODER_PRECISION=fp32`` forces float32.
    """
    forced = os.environ.get("TNSEG_ENCODER_PRECISION", "").strip().lower()
    if forced in PRECISIONS:
        return forced
    return "bf16" if device.type == "cpu" and cpu_has_native_bf16() else "fp32"


def embedding_model_id(weights_sha: str, precision: str) -> str:
    return f"litemedsam-encoder:{weights_sha}:{precision}"


class LiteMedSamRefiner(SamRefiner):
    """``Refiner`` for LiteMedSAM (stock or with the decoder fine-tuned here)."""

    text_points = False  # a text prompt's map reaches LiteMedSAM as its box only (engine/text_prompt.py)

    def __init__(
        self,
        model: nn.Module,
        name: str = lms.LITEMEDSAM,
        weights_sha: str | None = None,
        device: torch.device | str = "cpu",
        cache: EmbeddingCache | None = None,
        encoder_precision: str | None = None,
        decoder_bf16: bool | None = None,
    ) -> None:
        device = torch.device(device)
        self.encoder_precision = encoder_precision or default_encoder_precision(device)
        if self.encoder_precision not in PRECISIONS:
            raise ValueError(f"encoder precision must be one of {PRECISIONS}")
        model_id = embedding_model_id(weights_sha, self.encoder_precision) if weights_sha else None
        super().__init__(model, name=name, model_id=model_id, device=device, cache=cache, decoder_bf16=decoder_bf16)
        # the fine-tuned decoder was trained on its single output for the nodule (training/litemedsam_finetune.py)
        self.ambiguity_outputs = name == lms.LITEMEDSAM

    def input_size(self, h: int, w: int) -> tuple[int, int]:
        return lms.input_size(h, w, self.img_size)

    @torch.inference_mode()
    def encode(self, frame: np.ndarray) -> np.ndarray:
        x, _ = lms.preprocess(frame, self.img_size)
        t = torch.from_numpy(x)[None].to(self.device)
        if self.encoder_precision == "bf16":
            with torch.autocast(self.device.type, dtype=torch.bfloat16):
                emb = self.model.image_encoder(t)
        else:
            emb = self.model.image_encoder(t)
        return emb[0].float().cpu().numpy()

    def frames_that_fit(self) -> int:
        g = int(self.model.prompt_encoder.image_embedding_size[0])
        return max(1, self.cache.max_bytes // (256 * g * g * 4))


def make_litemedsam_refiner(name: str = lms.LITEMEDSAM, device: torch.device | str = "cpu", cache: EmbeddingCache | None = None) -> LiteMedSamRefiner:
    """The stock model or a fine-tuned variant (its decoder file from the registry), ready to refine."""
    model, sha = lms.load_litemedsam(decoder_path=lms.decoder_path_for(name))
    return LiteMedSamRefiner(model, name=name, weights_sha=sha, device=device, cache=cache)
