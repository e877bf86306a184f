"""The worker's second part: LiteMedSAM's prompt encoder + mask decoder retrained on the job's frames.

The encoder is frozen, so each frame is encoded once (``embedding_views``,
whose disk cache outlives the run: a frame accepted before is not encoded
again, and the app writes an accepted frame's views in the background as it
is accepted, ``training/accept_views``) and the run is then light decoder
steps. The user's training frames get ``views`` embeddings each (plain and
mirrored), replay and validation frames one. The part is judged on its own (``retrain_gate.gate`` on its metrics): the box-prompted
Dice (the held-out frames' true boxes, each side moved by up to ±10 %, at the
256 px grid) before and after, on the user's held-out frames and on a sample
of the base validation frames.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from tnseg_desktop.training.data import Sample
from tnseg_desktop.training.job import DecoderPart
from tnseg_desktop.training.litemedsam_finetune import FinetuneConfig, ViewSet, finetune, save_decoder, validate

Emit = Callable[[dict[str, Any]], None]


class DecoderStopped(Exception):
    pass


def _box_dice(model: torch.nn.Module, views: ViewSet | None) -> dict[str, Any] | None:
    if views is None or len(views) == 0:
        return None
    return {"n": len(views), "dice": validate(model, views, clicks=1)["box_dice"]}


def _viewset(paths: Sequence[Path]) -> ViewSet | None:
    return ViewSet.load(list(paths)) if paths else None


def box_fraction(train: Sequence[dict[str, Any]]) -> float:
    """Share of samples started from a box: the user's click edits teach clicks, every other edit a box.

    A brushed, automatic or text-made mask is simulated as a box because a box is how most users start;
    at least a quarter of samples stay clicks so that the decoder keeps answering them.
    """
    user = [f for f in train if f.get("origin") == "user"]
    if not user:
        return 0.5
    clicks = sum(1 for f in user if f.get("tool") == "click")
    return float(min(1.0, max(0.25, 1.0 - clicks / len(user))) if clicks else 0.75)


def run_decoder_part(part: DecoderPart, train_refs: Sequence[dict[str, Any]], train: Sequence[Sample], val_user: Sequence[Sample],
                     val_base: Sequence[Sample], emit: Emit, should_stop: Callable[[], bool], device: torch.device) -> dict[str, Any]:
    """Encode, fine-tune, evaluate and save; returns the part's record for the 'done' line (no file on a stop)."""
    from tnseg_desktop.file_hash import sha256_of
    from tnseg_desktop.model import litemedsam as lms
    from tnseg_desktop.training.embedding_views import build_views

    t_start = time.perf_counter()
    model, encoder_sha = lms.load_litemedsam(decoder_path=Path(part.base_weights))
    model = model.to(device)
    cache = Path(part.view_cache)
    origin = {str(r["key"]): str(r.get("origin", "")) for r in train_refs}
    user = [s for s in train if origin.get(s.id) == "user"]
    replay = [s for s in train if origin.get(s.id) != "user"]
    groups = [("user", user, part.views), ("replay", replay, 1), ("val_user", list(val_user), 1),
              ("val_base", list(val_base)[: part.max_base_val], 1)]
    total = sum(len(g) * k for _, g, k in groups)
    done = {"n": 0, "made": 0, "made_s": 0.0}
    t0 = time.perf_counter()
    emit({"event": "phase", "phase": "decoder-embeddings", "total": total})

    def progress(r: dict[str, Any]) -> None:
        done["n"] += 1
        if r.get("view_s"):
            done["made"] += 1
            done["made_s"] += float(r["view_s"])
        if r.get("made"):
            elapsed = time.perf_counter() - t0
            emit({"event": "step", "part": "decoder-embeddings", "step": done["n"], "of": total, "elapsed_s": round(elapsed, 1),
                  "eta_s": round(r["s_per_view"] * (total - done["n"]), 1)})

    paths: dict[str, list[Path]] = {}
    for name, samples, k in groups:
        items = [(s.id, s.image, s.mask) for s in samples]
        per_frame = build_views(items, k, cache, model.image_encoder, encoder_sha, part.precision, progress=progress,
                                cancelled=should_stop)
        if should_stop():
            raise DecoderStopped()
        paths[name] = [p for frame in per_frame for p in frame]
    encode_s = time.perf_counter() - t0
    train_set = _viewset(paths["user"] + paths["replay"])
    if train_set is None or len(train_set) == 0:
        return {"skipped": "none of the training frames has a non-empty mask to teach the box tool."}
    hold, base = _viewset(paths["val_user"]), _viewset(paths["val_base"])
    emit({"event": "phase", "phase": "decoder-evaluating-base"})
    before = {"val_user": _box_dice(model, hold), "val_base": _box_dice(model, base)}
    cfg = FinetuneConfig(steps=part.steps, lr=part.lr, val_every=10**9, box_fraction=box_fraction(train_refs),
                         threads=torch.get_num_threads())
    emit({"event": "phase", "phase": "decoder-training"})
    t1 = time.perf_counter()

    def step_event(r: dict[str, Any]) -> None:
        per = (time.perf_counter() - t1) / max(1, r["step"])
        emit({"event": "step", "part": "decoder", "step": r["step"], "loss": r["loss"], "elapsed_s": r["elapsed_s"],
              "eta_s": round(per * (part.steps - r["step"]), 1)})

    finetune(model, train_set, None, cfg, progress=step_event, cancelled=should_stop)
    if should_stop():
        raise DecoderStopped()
    train_s = time.perf_counter() - t1
    emit({"event": "phase", "phase": "decoder-evaluating"})
    after = {"val_user": _box_dice(model, hold), "val_base": _box_dice(model, base)}
    metrics = {"before": before, "after": after}
    if should_stop():
        raise DecoderStopped()
    out = Path(part.output_weights)
    if out.exists():
        raise FileExistsError(f"the decoder output {out} appeared while training ran; it was left as it is.")
    meta = {"parent": part.base_name, "name": part.output_name, "steps": part.steps, "lr": part.lr,
            "box_fraction": cfg.box_fraction, "train_views": len(train_set), "metrics": metrics,
            "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    save_decoder(model, out, encoder_sha, meta)
    return {"output": str(out), "name": part.output_name, "sha256": sha256_of(out), "metrics": metrics, "steps": part.steps,
            "train_views": len(train_set), "encode_seconds": round(encode_s, 1), "train_seconds": round(train_s, 1),
            "seconds_per_step": round(train_s / max(1, part.steps), 3), "minutes": round((time.perf_counter() - t_start) / 60, 3),
            "views_made_per_s": None if encode_s <= 0 else round(total / encode_s, 3),
            # encoder passes only: views found in the cache (written at accept, or by an earlier run) cost none
            "views_made": done["made"], "seconds_per_view": round(done["made_s"] / done["made"], 3) if done["made"] else None}

