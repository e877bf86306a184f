"""Segment Anything (vit_b/l/h, MobileSAM) as a click/box/mask refiner on cached embeddings.

The image embedding is computed once per frame (``prepare``, usually by the
background precompute) and kept in an :class:`EmbeddingCache`; a click then
costs only the prompt encoder and mask decoder.

Prompts:
- clicks become SAM points (label 1 positive, 0 negative);
- the box becomes SAM's box prompt;
- the current mask becomes the low-res mask prompt. When it is the mask this
  refiner itself produced last on this frame, SAM's own low-res logits are fed
  back (what SAM was trained with). Any other mask (auto, painted) is
  area-downsampled to the 256x256 prompt grid and mapped linearly to logits
  in [-PRIOR_LOGIT, +PRIOR_LOGIT] (8: sigmoid 0.9997, the confidence of a
  settled SAM prediction; the soft edge keeps the boundary where it was).

Output choice: a lone click with no box and no mask is ambiguous (part, whole,
surroundings), so SAM's three multimask outputs are scored by its predicted
IoU and the best is kept; with several prompts the single-mask output is used,
as SAM's interactive training does.

Precision: on a CPU with native bfloat16 (AVX512-BF16 / AMX), the mask
decoder runs in bfloat16 from a bf16 copy of its weights (the image encoder
and the prompt encoder stay float32). Measured on the 2-core EPYC here with
one thread, a click with the current decoder path: 56 ms float32 -> 39 ms bf16,
with 99.8 % of output pixels on the same side of 0 (random MobileSAM weights). ``decoder_bf16=False``, or
the environment variable ``TNSEG_SAM_DECODER_FP32=1``, keeps float32.
"""

from __future__ import annotations

import copy
import hashlib
import os
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import nn

from tnseg_desktop.engine import mask_ops
from tnseg_desktop.engine.embedding_cache import CacheKey, EmbeddingCache, frame_digest
from tnseg_desktop.engine.refiner_base import Prompts
from tnseg_desktop.engine.sam_decode import decode, dense_tokens, to_tokens
from tnseg_desktop.model.device import cpu_has_native_bf16
from tnseg_desktop.model.sam_adapter import SAM_NAMES, find_sam_weights, load_sam

PRIOR_LOGIT = 8.0
_MEMO_FRAMES = 16


@dataclass
class SamPrediction:
    logits: np.ndarray  # float32 HxW at frame resolution (> 0 is foreground)
    iou: float  # SAM's predicted IoU of the chosen output
    low_res: np.ndarray  # (m, m) low-res logits, SAM's own mask-prompt space
    multimask: bool

    @property
    def mask(self) -> np.ndarray:
        return self.logits > 0


def _to_rgb(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 2:
        return np.repeat(frame[:, :, None], 3, axis=2)
    if frame.ndim == 3 and frame.shape[2] == 1:
        return np.repeat(frame, 3, axis=2)
    if frame.ndim == 3 and frame.shape[2] == 3:
        return frame
    raise ValueError(f"unexpected frame shape {frame.shape}")


def _mask_digest(mask: np.ndarray) -> str:
    m = np.ascontiguousarray(mask, dtype=bool)
    return hashlib.sha1(np.packbits(m).tobytes() + str(m.shape).encode()).hexdigest()


class SamRefiner:
    """``Refiner`` for any ``segment_anything.Sam`` (full-size or small, SAM or MobileSAM)."""

    needs_embedding = True
    # a lone click picks the best of SAM's three ambiguity outputs; a decoder trained for one target sets this False
    ambiguity_outputs = True

    def __init__(
        self,
        model: nn.Module,
        name: str = "sam",
        model_id: str | None = None,
        device: torch.device | str = "cpu",
        cache: EmbeddingCache | None = None,
        decoder_bf16: bool | None = None,
    ) -> None:
        self.name = name
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.model_id = model_id or f"random-{uuid.uuid4().hex}"
        self.cache = cache if cache is not None else EmbeddingCache()
        self.img_size = int(self.model.image_encoder.img_size)
        self.mask_size = tuple(int(s) for s in self.model.prompt_encoder.mask_input_size)
        self._lock = threading.Lock()
        self._memo: OrderedDict[str, tuple[str, np.ndarray]] = OrderedDict()
        self._hot: tuple[CacheKey, torch.Tensor] | None = None
        self._dense_pe: torch.Tensor | None = None
        if decoder_bf16 is None:
            decoder_bf16 = self.device.type == "cpu" and cpu_has_native_bf16() and os.environ.get("TNSEG_SAM_DECODER_FP32", "") in ("", "0")
        self.decoder_bf16 = bool(decoder_bf16)
        self._decoder = self._make_decoder()

    def _make_decoder(self) -> nn.Module:
        if not self.decoder_bf16:
            return self.model.mask_decoder
        return copy.deepcopy(self.model.mask_decoder).to(torch.bfloat16).eval()

    @property
    def _dtype(self) -> torch.dtype:
        return torch.bfloat16 if self.decoder_bf16 else torch.float32

    # -- embeddings ---------------------------------------------------------
    def key(self, frame: np.ndarray, digest: str | None = None) -> CacheKey:
        return CacheKey(digest or frame_digest(frame), self.model_id)

    def input_size(self, h: int, w: int) -> tuple[int, int]:
        """(h, w) of the frame resized so that its longest side is the encoder's size."""
        scale = self.img_size / max(h, w)
        return int(h * scale + 0.5), int(w * scale + 0.5)

    @torch.inference_mode()
    def encode(self, frame: np.ndarray) -> np.ndarray:
        """The image embedding (256, g, g) float32; always computes (no cache)."""
        rgb = _to_rgb(frame)
        h, w = rgb.shape[:2]
        nh, nw = self.input_size(h, w)
        interp = cv2.INTER_AREA if nh < h else cv2.INTER_LINEAR
        resized = cv2.resize(np.ascontiguousarray(rgb), (nw, nh), interpolation=interp)
        x = torch.from_numpy(resized).to(self.device).permute(2, 0, 1)[None].float()
        x = self.model.preprocess(x)  # SAM's pixel mean/std, zero-padded to a square
        emb = self.model.image_encoder(x)[0]
        return emb.float().cpu().numpy()

    def embedding(self, frame: np.ndarray, digest: str | None = None) -> np.ndarray:
        return self.cache.get_or_compute(self.key(frame, digest), lambda: self.encode(frame))

    def frames_that_fit(self) -> int:
        """How many embeddings the memory cache holds (a bound for the background precompute)."""
        g = self.img_size // 16
        return max(1, self.cache.max_bytes // (256 * g * g * 4))

    def prepare(self, frame: np.ndarray) -> None:
        self.embedding(frame)

    def is_prepared(self, frame: np.ndarray) -> bool:
        return self.cache.contains(self.key(frame))

    def invalidate(self) -> None:
        self.cache.invalidate()
        with self._lock:
            self._memo.clear()
            self._hot = None
            self._dense_pe = None

    def set_model(self, model: nn.Module, model_id: str) -> None:
        """Swap the network (e.g. another checkpoint); cached embeddings of the old one are dropped."""
        self.model = model.to(self.device).eval()
        self.model_id = model_id
        self.img_size = int(self.model.image_encoder.img_size)
        self.mask_size = tuple(int(s) for s in self.model.prompt_encoder.mask_input_size)
        self._decoder = self._make_decoder()
        self.invalidate()

    def _embedding_tensor(self, frame: np.ndarray, digest: str) -> torch.Tensor:
        key = self.key(frame, digest)
        with self._lock:
            hot = self._hot
        if hot is not None and hot[0] == key:
            return hot[1]
        grid = torch.from_numpy(np.array(self.embedding(frame, digest)))[None].to(self.device, self._dtype)
        t = to_tokens(grid)  # laid out once per frame for the decoder (see engine/sam_decode.py)
        with self._lock:
            self._hot = (key, t)
        return t

    # -- prompts --------------------------------------------------------------
    def _points(self, prompts: Prompts, h: int, w: int, nh: int, nw: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        if not prompts.clicks:
            return None
        sy, sx = nh / h, nw / w
        coords = [((c.col + 0.5) * sx - 0.5, (c.row + 0.5) * sy - 0.5) for c in prompts.clicks]
        labels = [1 if c.positive else 0 for c in prompts.clicks]
        return (
            torch.tensor([coords], dtype=torch.float32, device=self.device),
            torch.tensor([labels], dtype=torch.int64, device=self.device),
        )

    def _box(self, prompts: Prompts, h: int, w: int, nh: int, nw: int) -> torch.Tensor | None:
        if prompts.box is None:
            return None
        r0, c0, r1, c1 = prompts.box
        sy, sx = nh / h, nw / w
        # exclusive ends -> the centres of the first and last pixels, like a point
        x0, y0 = (c0 + 0.5) * sx - 0.5, (r0 + 0.5) * sy - 0.5
        x1, y1 = (c1 - 0.5) * sx - 0.5, (r1 - 0.5) * sy - 0.5
        return torch.tensor([[x0, y0, x1, y1]], dtype=torch.float32, device=self.device)

    def prior_to_low_res(self, prior: np.ndarray, nh: int, nw: int) -> np.ndarray:
        """A binary mask at frame resolution -> (m, m) logits in SAM's mask-prompt grid."""
        mh, mw = self.mask_size
        th = max(1, int(round(nh * mh / self.img_size)))
        tw = max(1, int(round(nw * mw / self.img_size)))
        frac = cv2.resize(prior.astype(np.float32), (tw, th), interpolation=cv2.INTER_AREA)
        grid = np.zeros((mh, mw), dtype=np.float32)  # padding is background
        grid[:th, :tw] = frac
        return (2.0 * grid - 1.0) * PRIOR_LOGIT

    def _mask_input(self, prior: np.ndarray | None, digest: str, nh: int, nw: int) -> np.ndarray | None:
        if prior is None or not np.any(prior):
            return None
        with self._lock:
            memo = self._memo.get(digest)
        if memo is not None and memo[0] == _mask_digest(prior > 0):
            return memo[1]
        return self.prior_to_low_res(prior > 0, nh, nw)

    # -- prediction -------------------------------------------------------------
    @torch.inference_mode()
    def predict(self, frame: np.ndarray, prior: np.ndarray | None, prompts: Prompts, multimask: bool | None = None) -> SamPrediction | None:
        """SAM's answer to these prompts, or None when there is no prompt at all."""
        h, w = frame.shape[:2]
        nh, nw = self.input_size(h, w)
        digest = frame_digest(frame)
        points = self._points(prompts, h, w, nh, nw)
        box = self._box(prompts, h, w, nh, nw)
        mask_in = self._mask_input(prior, digest, nh, nw)
        if points is None and box is None:
            return None
        if multimask is None:
            multimask = self.ambiguity_outputs and points is not None and len(prompts.clicks) == 1 and box is None and mask_in is None
        emb = self._embedding_tensor(frame, digest)
        masks_t = None if mask_in is None else torch.from_numpy(mask_in)[None, None].to(self.device)
        sparse, _ = self.model.prompt_encoder(points=points, boxes=box, masks=None)
        dense = dense_tokens(self.model.prompt_encoder, masks_t, self._dtype)
        if self._dense_pe is None:  # depends only on the model: computing it costs as much as a prompt
            self._dense_pe = to_tokens(self.model.prompt_encoder.get_dense_pe().to(self._dtype))
        g = self.model.prompt_encoder.image_embedding_size
        low_res, iou = decode(self._decoder, emb, self._dense_pe, (int(g[0]), int(g[1])), sparse.to(self._dtype), dense, multimask)
        iou = iou.float()
        best = int(torch.argmax(iou[0])) if multimask else 0
        low = low_res[0, best].float().cpu().numpy()
        pred = SamPrediction(logits=self.upsample(low, nh, nw, h, w), iou=float(iou[0, best]), low_res=low, multimask=multimask)
        with self._lock:
            self._memo[digest] = (_mask_digest(pred.mask), pred.low_res)
            self._memo.move_to_end(digest)
            while len(self._memo) > _MEMO_FRAMES:
                self._memo.popitem(last=False)
        return pred

    def upsample(self, low: np.ndarray, nh: int, nw: int, h: int, w: int) -> np.ndarray:
        """SAM's postprocessing (bilinear to the padded input, crop, bilinear to the frame), with OpenCV.

        cv2's INTER_LINEAR uses the same half-pixel grid as torch's bilinear
        with align_corners=False, and is several times faster on the CPU.
        """
        s = self.img_size
        full = cv2.resize(low, (s, s), interpolation=cv2.INTER_LINEAR)[:nh, :nw]
        return cv2.resize(np.ascontiguousarray(full), (w, h), interpolation=cv2.INTER_LINEAR)

    def refine(self, frame: np.ndarray, prior: np.ndarray | None, prompts: Prompts) -> np.ndarray:
        pred = self.predict(frame, prior, prompts)
        if pred is None:
            return np.zeros(frame.shape[:2], dtype=bool) if prior is None else prior > 0
        # a tidied mask no longer matches the memo, so the next click feeds back this binary mask
        return mask_ops.drop_pieces_at_negative_clicks(pred.mask, prompts.clicks)


def available_sam_refiners() -> list[str]:
    """Names among sam-vit-b/l/h and mobilesam whose checkpoint is installed."""
    return [name for name in SAM_NAMES if find_sam_weights(name) is not None]


def make_sam_refiner(name: str, device: torch.device | str = "cpu", cache: EmbeddingCache | None = None, verify: bool = False) -> SamRefiner:
    """The refiner for an installed checkpoint; a missing file is a one-sentence ``UserFacingError``."""
    model, digest = load_sam(name, verify=verify)
    return SamRefiner(model, name=name, model_id=digest, device=device, cache=cache)
