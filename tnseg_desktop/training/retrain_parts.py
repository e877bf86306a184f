"""Retraining both trainable parts on the user's accepted frames: the automatic mask (tnseg-med) and LiteMedSAM's decoder.

The encoder is frozen, so every accepted frame is encoded once per view
(plain and mirrored, through ``training/embedding_views``, whose disk cache
the app fills as frames are accepted) and a retraining run is then mostly
light steps. Each part starts from the model in use, trains on the user's
frames mixed 1:1 with a replay sample of the base data (against forgetting),
and is judged on its own: Dice on the held-out user frames must not get
worse and Dice on the base validation frames may lose at most
``max_base_drop``. The automatic mask is scored as the mask; the decoder
with the held-out frames' true boxes moved by ±10 % (as ``eval-interactive
--start box``).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from tnseg_desktop.model.tnseg_med import TnsegMed
from tnseg_desktop.training.litemedsam_finetune import FinetuneConfig, ViewSet, finetune, validate as validate_decoder
from tnseg_desktop.training.tnseg_med_train import MedTrainConfig, MedViews, train_med, validate as validate_med

Progress = Callable[[dict], None]


@dataclass
class PartsConfig:
    med_steps: int = 300
    med_lr: float = 5e-4
    decoder_steps: int = 60
    decoder_lr: float = 1e-5
    batch: int = 8
    max_base_drop: float = 0.01
    seed: int = 0


@dataclass
class PartResult:
    name: str
    before: float  # held-out user frames
    after: float
    base_before: float | None
    base_after: float | None
    steps: int
    seconds: float
    promoted: bool = False
    reason: str = ""

    def judge(self, max_base_drop: float) -> None:
        if self.after < self.before:
            self.promoted, self.reason = False, f"Dice on your held-out frames fell ({self.before:.3f} -> {self.after:.3f})"
        elif self.base_before is not None and self.base_after is not None and self.base_after < self.base_before - max_base_drop:
            self.promoted, self.reason = False, f"Dice on the base validation frames fell by more than {max_base_drop * 100:.0f} points ({self.base_before:.3f} -> {self.base_after:.3f})"
        else:
            self.promoted, self.reason = True, "not worse on your held-out frames, base validation kept"


@dataclass
class PartsData:
    user_train: MedViews
    user_holdout: MedViews
    replay: MedViews | None = None
    base_val: MedViews | None = None
    extra: dict = field(default_factory=dict)


def _mix(user: MedViews, replay: MedViews | None, rng: np.random.Generator) -> MedViews:
    if replay is None or len(replay) == 0:
        return user
    take = rng.choice(len(replay), size=min(len(replay), len(user)), replace=False).tolist()
    sub = MedViews(replay.embeddings[take], replay.images[take], replay.masks[take], [replay.hw[i] for i in take], [replay.target[i] for i in take])
    return MedViews.concat([user, sub])


def _as_viewset(v: MedViews) -> ViewSet:
    keep = [i for i in range(len(v)) if bool(v.masks[i].any())]
    return ViewSet(v.embeddings[keep], v.masks[keep, 0].numpy(), [v.hw[i] for i in keep])


def retrain_med(net: TnsegMed, data: PartsData, cfg: PartsConfig, progress: Progress | None = None, cancelled: Callable[[], bool] = lambda: False) -> tuple[TnsegMed, PartResult]:
    rng = np.random.default_rng(cfg.seed)
    before = validate_med(net, data.user_holdout)["dice"]
    base_before = validate_med(net, data.base_val)["dice"] if data.base_val is not None else None
    t0 = time.perf_counter()
    tcfg = MedTrainConfig(steps=cfg.med_steps, batch=cfg.batch, lr=cfg.med_lr, val_every=10**9, seed=cfg.seed, ema=0.98)
    new, _ = train_med(copy.deepcopy(net), _mix(data.user_train, data.replay, rng), None, tcfg,
                       progress=(lambda r: progress({"part": "auto", **r})) if progress else None, cancelled=cancelled)
    result = PartResult("auto", before, validate_med(new, data.user_holdout)["dice"], base_before,
                        validate_med(new, data.base_val)["dice"] if data.base_val is not None else None, cfg.med_steps, time.perf_counter() - t0)
    result.judge(cfg.max_base_drop)
    return new, result


def retrain_decoder(model: torch.nn.Module, data: PartsData, cfg: PartsConfig, progress: Progress | None = None, cancelled: Callable[[], bool] = lambda: False) -> tuple[torch.nn.Module, PartResult]:
    rng = np.random.default_rng(cfg.seed)
    hold = _as_viewset(data.user_holdout)
    base = _as_viewset(data.base_val) if data.base_val is not None else None
    before = validate_decoder(model, hold, clicks=1)["box_dice"]
    base_before = validate_decoder(model, base, clicks=1)["box_dice"] if base is not None else None
    t0 = time.perf_counter()
    new = copy.deepcopy(model)
    fcfg = FinetuneConfig(steps=cfg.decoder_steps, batch=cfg.batch, lr=cfg.decoder_lr, val_every=10**9, seed=cfg.seed)
    finetune(new, _as_viewset(_mix(data.user_train, data.replay, rng)), None, fcfg,
             progress=(lambda r: progress({"part": "decoder", **r})) if progress else None, cancelled=cancelled)
    result = PartResult("decoder", before, validate_decoder(new, hold, clicks=1)["box_dice"], base_before,
                        validate_decoder(new, base, clicks=1)["box_dice"] if base is not None else None, cfg.decoder_steps, time.perf_counter() - t0)
    result.judge(cfg.max_base_drop)
    return new, result


def load_parts_data(user_train: Sequence[Path], user_holdout: Sequence[Path], replay: Sequence[Path] = (), base_val: Sequence[Path] = ()) -> PartsData:
    return PartsData(
        MedViews.load(user_train), MedViews.load(user_holdout),
        MedViews.load(replay) if replay else None, MedViews.load(base_val) if base_val else None,
    )
