"""An accepted frame's retraining views, written when it is accepted instead of when "Retrain" is pressed.

The worker's decoder part (training/decoder_part.py) makes ``views`` view files
of every user training frame with ``embedding_views.build_views`` and skips
those that exist. The app writes them in the background as frames are
accepted (ui/accept_views.py), so a run finds them and starts with no encoder
pass for them. They must be the worker's very files: the same name (the same
image and mask arrays, encoder sha256, precision and specs, through
``embedding_views.view_file``) and the same content. The image is the frame
as the worker reads it (``to_gray`` of the source frame, training/job_data.py)
and the mask is read back from the store exactly as the worker reads it.

View 0 is the plain frame, whose embedding the interactive LiteMedSAM refiner
has usually computed already: when its embedding cache holds one for exactly
this image, encoder and precision, view 0 is written from it with no encoder
pass. Every other view costs one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from tnseg_desktop.engine.embedding_cache import CacheKey, EmbeddingCache, frame_digest
from tnseg_desktop.prompts import to_gray
from tnseg_desktop.store import AcceptedFrame, AnnotationStore
from tnseg_desktop.training import view_index
from tnseg_desktop.training.embedding_views import ViewSpec, make_view, plain_view, save_view, view_file, view_specs
from tnseg_desktop.training.job import frame_key, is_validation_frame
from tnseg_desktop.training.retrain import RetrainSettings


@dataclass
class ViewEncoder:
    """The LiteMedSAM image encoder that makes the views, and the refiner's embedding cache when it may serve view 0."""

    module: torch.nn.Module
    weights_sha: str
    cache: EmbeddingCache | None = None


def encoder_of(refiner: Any) -> ViewEncoder | None:
    """The stock LiteMedSAM encoder of a loaded refiner (itself, the hybrid's box refiner, or inside a view-confined
    wrapper), or None when it has none: the worker encodes with the stock encoder on the CPU, so nothing else will do."""
    from tnseg_desktop.engine.litemedsam_refiner import LiteMedSamRefiner

    inner = getattr(refiner, "refiner", refiner)
    box = getattr(inner, "box_refiner", inner)
    if not isinstance(box, LiteMedSamRefiner) or box.device.type != "cpu":
        return None
    stock = view_index.stock_encoder_sha()
    if not box.weights_sha or box.weights_sha != stock:
        return None
    # its cache is keyed by encoder and precision: a lookup at another precision than the refiner's simply misses
    return ViewEncoder(box.model.image_encoder, box.weights_sha, box.cache)


def cached_plain_embedding(cache: EmbeddingCache, image: np.ndarray, weights_sha: str, precision: str) -> np.ndarray | None:
    """The refiner's embedding of exactly ``image`` by this encoder at this precision, if it is cached."""
    from tnseg_desktop.engine.litemedsam_refiner import embedding_model_id

    return cache.get(CacheKey(frame_digest(image), embedding_model_id(weights_sha, precision)))


def write_accept_views(image: np.ndarray, mask: np.ndarray, embedding: np.ndarray | None, encoder: torch.nn.Module,
                       weights_sha: str, cache_dir: Path, precision: str = "bf16", k: int = 2, sample_id: str = "",
                       cancelled: Callable[[], bool] = lambda: False) -> list[Path]:
    """The ``k`` view files of one frame, named and made as ``build_views`` does; returns those written or found.

    ``embedding``: the frame's plain embedding by this encoder at this precision, or None. ``cancelled`` is asked
    before each encoder pass and may block there (the app waits in it while interactive work runs); True stops,
    leaving the views written so far.
    """
    out: list[Path] = []
    for spec in view_specs(sample_id, k):
        path = view_file(cache_dir, weights_sha, precision, image, mask, spec)
        if not path.is_file():
            if spec == ViewSpec() and embedding is not None:
                view = plain_view(image, mask, embedding)
            else:
                if cancelled():
                    return out
                view = make_view(encoder, image, mask, spec, precision)
            save_view(path, view)
        out.append(path)
    return out


def _mask_sha256(store: AnnotationStore, mask_id: int) -> str:
    row = store.db.query_one("SELECT sha256 FROM masks WHERE id = ?", (int(mask_id),))
    return str(row["sha256"]) if row is not None else ""


def write_accepted_frame_views(store: AnnotationStore, accepted: AcceptedFrame, frame: np.ndarray, encoder: ViewEncoder,
                               settings: RetrainSettings, cache_dir: Path,
                               cancelled: Callable[[], bool] = lambda: False) -> list[Path]:
    """The views a retraining will want of this accepted frame: ``settings.decoder_views`` of a training frame, one
    of a frame held aside for validation (as the worker makes them); a note lets the run's estimate count them."""
    image = to_gray(frame)
    mask = store.load_mask(accepted.final_mask_id)
    key = frame_key(store.study(accepted.study_id).content_hash, accepted.frame_index)
    k = 1 if is_validation_frame(key, settings.val_percent) else settings.decoder_views
    precision = settings.decoder_precision
    embedding = cached_plain_embedding(encoder.cache, image, encoder.weights_sha, precision) if encoder.cache else None
    paths = write_accept_views(image, mask, embedding, encoder.module, encoder.weights_sha, cache_dir, precision, k, key,
                               cancelled)
    if len(paths) == k:
        note = view_index.note_path(cache_dir, encoder.weights_sha, precision, key, _mask_sha256(store, accepted.final_mask_id))
        view_index.write_note(note, paths)
    return paths
