"""The tnseg-lite training loop, shared by `tnseg-desktop train` and the retraining worker.

AdamW, warm-up then cosine decay (over steps, or over wall-clock time when the
budget is in minutes), Dice + BCE, bf16 autocast on the CPU and fp16 AMP on a
GPU. A share of every batch learns the automatic mask (no prior, no clicks);
the rest learns refinement from a simulated prior and clicks placed on the
model's own errors (0 to ``max_click_rounds`` no-grad rounds, as in iterative
click training). Optionally frames the starting model segments badly are drawn
more often (``hard_weighting``) and validation sees a moving average of the
weights (``ema``). The weights with the best validation Dice are kept.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from tnseg_desktop.atomic_write import atomic_path
from tnseg_desktop.model.lite import TnsegLite
from tnseg_desktop.model.lite_predictor import LitePredictor
from tnseg_desktop.prompts import Click, click_maps
from tnseg_desktop.training.augment import augment, augment_object, perturb_mask
from tnseg_desktop.training.clicks import next_click
from tnseg_desktop.training.data import Sample
from tnseg_desktop.training.evaluate import evaluate_probs
from tnseg_desktop.training.losses import dice_bce_loss

Progress = Callable[[dict[str, Any]], None]


class TrainingStopped(Exception):
    """Raised when ``should_stop`` turned true; carries the state to checkpoint."""

    def __init__(self, checkpoint: dict[str, Any]) -> None:
        super().__init__("training stopped")
        self.checkpoint = checkpoint


@dataclass
class TrainConfig:
    size: int = 160
    batch: int = 8
    lr: float = 2e-3
    weight_decay: float = 1e-4
    steps: int | None = None
    minutes: float | None = None
    warmup: int = 100
    seed: int = 0
    val_every: int = 250
    p_auto: float = 0.5  # share of samples trained as automatic masks
    p_object_crop: float = 0.0  # share of refinement samples seen zoomed in on the object, as the refiner does at inference
    p_self_prior: float = 0.0  # share of refinement samples whose starting mask is the model's own automatic mask
    max_click_rounds: int = 2  # no-grad click rounds before the trained one: 0..N, uniform
    ema: float = 0.0  # > 0: validate and keep an exponential moving average of the weights with this decay
    hard_weighting: float = 0.0  # sample a frame with weight 1 + k * (1 - Dice of the starting model's automatic mask)
    aug_strength: float = 1.0
    base_channels: int = 16
    head_hidden: int = 32
    extra: dict[str, Any] = field(default_factory=dict)

    def budget_fraction(self, step: int, elapsed_s: float) -> float:
        if self.minutes is not None:
            return min(1.0, elapsed_s / (60.0 * self.minutes))
        total = self.steps if self.steps is not None else 1000
        return min(1.0, step / max(1, total))


def _lr_at(cfg: TrainConfig, step: int, fraction: float) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    return cfg.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * fraction)))


def _autocast(device: torch.device):
    if device.type == "cpu":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return torch.autocast(device.type, dtype=torch.float16)


def new_model(cfg: TrainConfig) -> TnsegLite:
    return TnsegLite(base_channels=cfg.base_channels, head_hidden=cfg.head_hidden, input_size=cfg.size)


class LiteTrainer:
    def __init__(
        self,
        cfg: TrainConfig,
        train: Sequence[Sample],
        val: Sequence[Sample] = (),
        model: TnsegLite | None = None,
        device: torch.device | str = "cpu",
        progress: Progress | None = None,
        should_stop: Callable[[], bool] | None = None,
        sample_weights: Sequence[float] | None = None,
        select: Callable[[list[dict[str, Any]]], float] | None = None,
    ) -> None:
        if not train:
            raise ValueError("no training samples")
        self.cfg = cfg
        self.train_samples = list(train)
        self.val_samples = list(val)
        self.device = torch.device(device)
        self.model = (model if model is not None else new_model(cfg)).to(self.device)
        self.model.input_size = cfg.size
        self.model.config["input_size"] = cfg.size
        self.progress = progress or (lambda _: None)
        self.should_stop = should_stop or (lambda: False)
        self.rng = np.random.default_rng(cfg.seed)
        torch.manual_seed(cfg.seed)
        w = np.ones(len(self.train_samples)) if sample_weights is None else np.asarray(sample_weights, dtype=float)
        if cfg.hard_weighting > 0:
            w = w * (1.0 + cfg.hard_weighting * (1.0 - self.starting_dice()))
        self.p = w / w.sum()
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.scaler = torch.amp.GradScaler("cuda") if self.device.type == "cuda" else None
        self.step = 0
        self.elapsed_prev = 0.0
        self.best: tuple[float, dict[str, torch.Tensor]] | None = None
        # which validation result is best (higher wins): by default the mean Dice over all validation frames
        self.select = select
        self.ema_model: TnsegLite | None = copy.deepcopy(self.model).eval() if cfg.ema > 0 else None
        self.history: list[dict[str, Any]] = []

    def starting_dice(self) -> np.ndarray:
        """Dice of the model's automatic mask on every training frame, as it is before this run."""
        result = evaluate_probs(LitePredictor(self.model, self.device).auto_probs, self.train_samples)
        self.model.train()
        return np.asarray([row["dice"] for row in result["per_image"]], dtype=float)

    # -- batches -------------------------------------------------------------
    def _batch(self) -> tuple[torch.Tensor, torch.Tensor, np.ndarray, list[np.ndarray]]:
        cfg = self.cfg
        idx = self.rng.choice(len(self.train_samples), size=cfg.batch, p=self.p)
        interactive = self.rng.random(cfg.batch) >= cfg.p_auto
        imgs, masks = [], []
        for i, inter in zip(idx, interactive):
            s = self.train_samples[i]
            zoomed = inter and cfg.p_object_crop > 0 and self.rng.random() < cfg.p_object_crop
            x, m = (augment_object if zoomed else augment)(s.image, s.mask, cfg.size, self.rng, cfg.aug_strength)
            imgs.append(x)
            masks.append(m)
        x = torch.from_numpy(np.stack(imgs))[:, None]
        y = torch.from_numpy(np.stack(masks).astype(np.float32))[:, None]
        return x, y, interactive, masks

    @torch.no_grad()
    def _simulate_interaction(self, x: torch.Tensor, masks: list[np.ndarray], interactive: np.ndarray) -> torch.Tensor:
        cfg = self.cfg
        s = cfg.size
        extra = np.zeros((cfg.batch, 3, s, s), dtype=np.float32)
        idx = np.flatnonzero(interactive)
        if len(idx) == 0:
            return torch.from_numpy(extra)
        priors: dict[int, np.ndarray] = {}
        clicks: dict[int, list[Click]] = {}
        own = idx[self.rng.random(len(idx)) < cfg.p_self_prior] if cfg.p_self_prior > 0 else idx[:0]
        if len(own):  # start where the user starts: from this model's automatic mask, wrong regions included
            with _autocast(self.device):
                logits = self.model(x[own].to(self.device), torch.zeros(len(own), 3, s, s, device=self.device)).float()
            for j, i in enumerate(own):
                priors[i] = (logits[j, 0] > 0).cpu().numpy()
        for i in idx:
            gt = masks[i]
            if i not in priors:
                priors[i] = perturb_mask(gt, self.rng) if self.rng.random() < 0.5 else np.zeros_like(gt)
            c = next_click(priors[i], gt)
            clicks[i] = [c] if c is not None else []
        rounds = int(self.rng.integers(0, cfg.max_click_rounds + 1))
        for _ in range(rounds):
            for i in idx:
                extra[i, 0] = priors[i]
                extra[i, 1:] = click_maps(clicks[i], (s, s))
            with _autocast(self.device):
                logits = self.model(x[idx].to(self.device), torch.from_numpy(extra[idx]).to(self.device)).float()
            preds = (logits[:, 0] > 0).cpu().numpy()
            for j, i in enumerate(idx):
                priors[i] = preds[j]
                c = next_click(preds[j], masks[i])
                if c is not None:
                    clicks[i].append(c)
        for i in idx:
            extra[i, 0] = priors[i]
            extra[i, 1:] = click_maps(clicks[i], (s, s))
        return torch.from_numpy(extra)

    # -- loop ----------------------------------------------------------------
    @property
    def eval_model(self) -> TnsegLite:
        """The weights validation sees and a snapshot saves: the moving average when there is one."""
        return self.ema_model if self.ema_model is not None else self.model

    @torch.no_grad()
    def _update_ema(self) -> None:
        if self.ema_model is None:
            return
        d = self.cfg.ema
        for avg, cur in zip(self.ema_model.state_dict().values(), self.model.state_dict().values()):
            if avg.dtype.is_floating_point:
                avg.mul_(d).add_(cur.detach(), alpha=1.0 - d)
            else:
                avg.copy_(cur)

    def validate(self) -> dict[str, Any]:
        model = self.eval_model
        predictor = LitePredictor(model, self.device)
        model.eval()
        result = evaluate_probs(predictor.auto_probs, self.val_samples, should_stop=self.should_stop)
        self.model.train()
        return result

    def _maybe_validate(self, force: bool = False) -> dict[str, Any] | None:
        if not self.val_samples:
            return None
        if not force and (self.step % self.cfg.val_every != 0):
            return None
        result = self.validate()
        dice_mean = result["dice_mean"]
        if dice_mean is None or len(result["per_image"]) < len(self.val_samples):  # cut short by a stop request
            return None
        score = dice_mean if self.select is None else float(self.select(result["per_image"]))
        if self.best is None or score > self.best[0]:
            self.best = (score, copy.deepcopy({k: v.detach().cpu() for k, v in self.eval_model.state_dict().items()}))
        out = {"val_dice": dice_mean, "val_iou": result["iou_mean"], "best_val_dice": self.best[0]}
        if self.select is not None:
            out["val_score"] = score
        return out

    def checkpoint(self) -> dict[str, Any]:
        return {
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "optimizer": self.opt.state_dict(),
            "step": self.step,
            "elapsed_s": self.elapsed_prev,
            "config": asdict(self.cfg),
            "model_config": dict(self.model.config),
            "best_val_dice": None if self.best is None else self.best[0],
            "best_model": None if self.best is None else self.best[1],
            "ema_model": None if self.ema_model is None else {k: v.detach().cpu() for k, v in self.ema_model.state_dict().items()},
        }

    def restore(self, ckpt: dict[str, Any]) -> None:
        self.model.load_state_dict(ckpt["model"])
        self.opt.load_state_dict(ckpt["optimizer"])
        self.step = int(ckpt["step"])
        self.elapsed_prev = float(ckpt["elapsed_s"])
        if self.ema_model is not None and ckpt.get("ema_model") is not None:
            self.ema_model.load_state_dict(ckpt["ema_model"])
        if ckpt.get("best_model") is not None:
            self.best = (float(ckpt["best_val_dice"]), ckpt["best_model"])
        self.rng = np.random.default_rng(self.cfg.seed + self.step)

    def _done(self, elapsed: float) -> bool:
        cfg = self.cfg
        if cfg.minutes is not None:
            return elapsed >= 60.0 * cfg.minutes
        return self.step >= (cfg.steps if cfg.steps is not None else 1000)

    def run(self) -> dict[str, Any]:
        cfg = self.cfg
        self.model.train()
        start = time.monotonic() - self.elapsed_prev
        loss_ema: float | None = None
        if self.step == 0:
            v = self._maybe_validate(force=True)
            if v:
                self.progress({"event": "val", "step": 0, **v})
        while True:
            elapsed = time.monotonic() - start
            if self._done(elapsed):
                break
            if self.should_stop():
                self.elapsed_prev = elapsed
                raise TrainingStopped(self.checkpoint())
            frac = cfg.budget_fraction(self.step, elapsed)
            lr = _lr_at(cfg, self.step, frac)
            for g in self.opt.param_groups:
                g["lr"] = lr
            x, y, interactive, masks = self._batch()
            extra = self._simulate_interaction(x, masks, interactive)
            x, y, extra = x.to(self.device), y.to(self.device), extra.to(self.device)
            with _autocast(self.device):
                logits = self.model(x, extra)
            loss = dice_bce_loss(logits, y)
            self.opt.zero_grad(set_to_none=True)
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
                self.scaler.step(self.opt)
                self.scaler.update()
            else:
                loss.backward()
                self.opt.step()
            self._update_ema()
            self.step += 1
            lv = float(loss.detach())
            loss_ema = lv if loss_ema is None else 0.95 * loss_ema + 0.05 * lv
            elapsed = time.monotonic() - start
            frac = cfg.budget_fraction(self.step, elapsed)
            eta = (elapsed / frac - elapsed) if frac > 0 else None
            record: dict[str, Any] = {"event": "step", "step": self.step, "loss": round(loss_ema, 5), "lr": lr, "elapsed_s": round(elapsed, 1), "eta_s": None if eta is None else round(eta, 1)}
            v = self._maybe_validate()
            if v:
                record.update(v)
            self.history.append(record)
            self.progress(record)
        self.elapsed_prev = time.monotonic() - start
        final_val = self._maybe_validate(force=True) if self.step % cfg.val_every != 0 else None
        if final_val:
            self.progress({"event": "val", "step": self.step, **final_val})
        if self.best is not None:
            self.model.load_state_dict(self.best[1])
        self.model.eval()
        return {
            "steps": self.step,
            "minutes": self.elapsed_prev / 60.0,
            "best_val_dice": None if self.best is None else self.best[0],
            "final_loss": loss_ema,
        }


def save_checkpoint(ckpt: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    return torch.load(str(path), map_location="cpu", weights_only=True)
