"""LiteMedSAM as the refiner: boxes, clicks and the current mask on one cached 256x64x64 embedding per frame.

Everything prompt-related is :class:`SamRefiner`'s; what differs is the
preprocessing (longest side to 256, per-image min-max to [0, 1], no mean/std,
see ``model/litemedsam.py``) and the precision of the encoder pass.

Both variants (``litemedsam`` and ``litemedsam-thyroid``) share the stock
encoder, so their embeddings are keyed by the encoder file's sha256 and the
encoder backend only: switching between them, or the automatic mask of
``tnseg-med``, reuses every embedding already computed.

Encoder backends (``encoder_precision``): ``fp32`` torch eager, ``bf16``
torch eager under bfloat16 autocast, ``onnx`` ONNX Runtime on the CPU from a
file exported once into the user's cache (``model/onnx_encoder.py``; the
export runs inside the first ``encode``, i.e. in the background precompute).
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tnseg_desktop.engine.embedding_cache import EmbeddingCache
from tnseg_desktop.engine.sam_refiner import SamRefiner
from tnseg_desktop.model import litemedsam as lms
from tnseg_desktop.model.device import cpu_has_native_bf16
from tnseg_desktop.model.onnx_encoder import OnnxEncoder

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "bf16", "onnx")


def default_encoder_precision(device: torch.device) -> str:
    """bf16 autocast on a CPU with native bf16, else float32; ONNX Runtime only when asked for.

    Measured by bench/litemedsam_encoder.py (5 ddti/val frames, one thread on a busy core of the
    2-core AMD EPYC): CPU ms per embedding fp32 3626, bf16 1904, onnx 1580; Dice of the true-box
    mask to fp32's: bf16 0.988 (min), onnx 0.998. ONNX is 17 % faster than bf16 but its one-time
    export takes about 31 s inside the first ``encode``, which a fresh install's first box would
    wait for, so it is not the default. ``TNSEG_ENCODER_PRECISION=fp32|bf16|onnx`` chooses.
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
    decoder_file: str | None = None  # the prompt-encoder/decoder file loaded (None: the stock one)

    def __init__(
        self,
        model: nn.Module,
        name: str = lms.LITEMEDSAM,
        weights_sha: str | None = None,
        device: torch.device | str = "cpu",
        cache: EmbeddingCache | None = None,
        encoder_precision: str | None = None,
        decoder_bf16: bool | None = None,
        encoder_threads: int | None = None,
    ) -> None:
        device = torch.device(device)
        self.encoder_precision = encoder_precision or default_encoder_precision(device)
        if self.encoder_precision not in PRECISIONS:
            raise ValueError(f"encoder precision must be one of {PRECISIONS}")
        model_id = embedding_model_id(weights_sha, self.encoder_precision) if weights_sha else None
        super().__init__(model, name=name, model_id=model_id, device=device, cache=cache, decoder_bf16=decoder_bf16)
        self.weights_sha = weights_sha
        self.encoder_threads = encoder_threads
        self._onnx: OnnxEncoder | None = None
        self._onnx_lock = threading.Lock()
        # the fine-tuned decoder was trained on its single output for the nodule (training/litemedsam_finetune.py)
        self.ambiguity_outputs = name == lms.LITEMEDSAM
        # the stock model learnt many medical structures; the thyroid decoder only nodules (text_prompt._refines)
        self.text_targets = None if name == lms.LITEMEDSAM else ("nodule",)

    def input_size(self, h: int, w: int) -> tuple[int, int]:
        return lms.input_size(h, w, self.img_size)

    def onnx_encoder(self) -> OnnxEncoder:
        """The ONNX Runtime encoder (exported or read from the cache on its first call, not here)."""
        with self._onnx_lock:
            if self._onnx is None:
                self._onnx = OnnxEncoder(self.model.image_encoder, self.weights_sha, self.img_size, threads=self.encoder_threads)
            return self._onnx

    @torch.inference_mode()
    def encode(self, frame: np.ndarray) -> np.ndarray:
        x, _ = lms.preprocess(frame, self.img_size)
        if self.encoder_precision == "onnx":
            try:
                return self.onnx_encoder()(x)
            except Exception as exc:  # noqa: BLE001 - not installed, or an export this torch cannot do
                # same network in float32: its embeddings match the ONNX ones to ~1e-5, so the cache key may stay
                log.warning("ONNX encoder unavailable (%s): encoding with torch float32 instead", exc)
                self.encoder_precision = "fp32"
        t = torch.from_numpy(x)[None].to(self.device)
        if self.encoder_precision == "bf16":
            with torch.autocast(self.device.type, dtype=torch.bfloat16):
                emb = self.model.image_encoder(t)
        else:
            emb = self.model.image_encoder(t)
        return emb[0].float().cpu().numpy()

    def set_model(self, model: nn.Module, model_id: str) -> None:
        super().set_model(model, model_id)
        with self._onnx_lock:
            self._onnx = None  # another encoder: its export is keyed by its own tensors
            self.weights_sha = None

    def frames_that_fit(self) -> int:
        g = int(self.model.prompt_encoder.image_embedding_size[0])
        return max(1, self.cache.max_bytes // (256 * g * g * 4))


def make_litemedsam_refiner(name: str = lms.LITEMEDSAM, device: torch.device | str = "cpu", cache: EmbeddingCache | None = None,
                            decoder_path: Path | None = None) -> LiteMedSamRefiner:
    """The stock model or a fine-tuned variant, ready to refine.

    The fine-tuned decoder is ``decoder_path`` (a retrained version from the store) or else the registry's file
    for ``name``; the encoder, and so every cached embedding, is the stock one either way.
    """
    use = decoder_path if decoder_path is not None and name != lms.LITEMEDSAM else lms.decoder_path_for(name)
    model, sha = lms.load_litemedsam(decoder_path=use)
    refiner = LiteMedSamRefiner(model, name=name, weights_sha=sha, device=device, cache=cache)
    refiner.decoder_file = str(use) if use is not None else None
    return refiner


def stock_embedding_of(refiner: object):
    """The refiner's cached-embedding function when its encoder is the stock LiteMedSAM one tnseg-med was trained
    on (same weights in the embedding key), else None; the hybrid refiner draws its boxes with LiteMedSAM."""
    from tnseg_desktop.model import registry

    sam = getattr(refiner, "box_refiner", refiner)
    if isinstance(sam, LiteMedSamRefiner) and sam.weights_sha == registry.entry(lms.LITEMEDSAM).sha256:
        return sam.embedding
    return None
