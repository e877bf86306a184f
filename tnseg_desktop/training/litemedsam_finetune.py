"""Fine-tune LiteMedSAM's prompt encoder + mask decoder for boxes and clicks on cached embeddings.

The stock LiteMedSAM was trained with boxes only: a lone click gives an empty
mask. Here the light parts learn clicks the way SAM's interactive training
works: each sample starts from a box (each side moved by up to ±15 % of the
box's size, as MedSAM jitters) or from one positive click at the deepest
point of the object, then goes through 0..R rounds, without gradients, of
"predict, click on the largest error, feed the previous low-res logits back
as the dense mask prompt"; the loss (BCE + Dice on the 256x256 low-res
logits, inside the unpadded area) is taken on the prediction after the last
round. The encoder is frozen; its embeddings come from
``training/embedding_views`` (computed once per augmented view).

Only the single-output mask token is trained and used (``single_output``):
in this tool the target of a box or a click is always the nodule, so SAM's
three-way ambiguity outputs are not needed.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from tnseg_desktop.atomic_write import atomic_path
from tnseg_desktop.model import litemedsam as lms
from tnseg_desktop.training.clicks import next_click
from tnseg_desktop.training.embedding_views import View, load_view, module_device
from tnseg_desktop.training.losses import masked_dice_bce_loss
from tnseg_desktop.training.metrics import dice, iou
from tnseg_desktop.training.sam_batch import decode_batch, encode_prompts

ARCH = "litemedsam-decoder"


@dataclass
class FinetuneConfig:
    steps: int = 600
    batch: int = 8
    lr: float = 3e-5
    weight_decay: float = 0.01
    box_fraction: float = 0.5  # samples that start from a box (the rest from one click)
    box_jitter: float = 0.15
    max_rounds: int = 3
    val_every: int = 150
    seed: int = 0
    threads: int = 1
    bf16: bool = True  # bf16 autocast for the decoder passes (on the CPU about 1.4x faster per step here)


@dataclass
class ViewSet:
    embeddings: torch.Tensor  # (N, 256, 64, 64) float16
    masks: np.ndarray  # (N, 256, 256) bool
    hw: list[tuple[int, int]]

    @classmethod
    def load(cls, paths: Sequence[Path]) -> "ViewSet":
        views = [load_view(p) for p in paths]
        views = [v for v in views if v.mask.any()]
        return cls.from_views(views)

    @classmethod
    def from_views(cls, views: Sequence[View]) -> "ViewSet":
        emb = torch.from_numpy(np.stack([v.embedding for v in views]))
        return cls(emb, np.stack([v.mask for v in views]), [v.hw for v in views])

    def __len__(self) -> int:
        return len(self.hw)


def valid_area(hw: Sequence[tuple[int, int]], size: int = lms.IMG_SIZE) -> torch.Tensor:
    out = torch.zeros(len(hw), 1, size, size)
    for i, (h, w) in enumerate(hw):
        out[i, 0, :h, :w] = 1.0
    return out


def bbox(mask: np.ndarray) -> tuple[float, float, float, float]:
    rows, cols = np.nonzero(mask)
    return float(cols.min()), float(rows.min()), float(cols.max()), float(rows.max())


def jitter_box(box: tuple[float, float, float, float], amount: float, rng: np.random.Generator, hw: tuple[int, int]) -> list[float]:
    """Each side moved by a uniform amount up to ``amount`` of the box's width/height, kept inside the image."""
    x0, y0, x1, y1 = box
    bw, bh = max(1.0, x1 - x0), max(1.0, y1 - y0)
    d = rng.uniform(-amount, amount, size=4) * np.array([bw, bh, bw, bh])
    h, w = hw
    nx0, ny0 = float(np.clip(x0 + d[0], 0, w - 1)), float(np.clip(y0 + d[1], 0, h - 1))
    nx1, ny1 = float(np.clip(x1 + d[2], 0, w - 1)), float(np.clip(y1 + d[3], 0, h - 1))
    return [min(nx0, nx1), min(ny0, ny1), max(nx0, nx1), max(ny0, ny1)]


class PromptState:
    """The prompts of a batch: optional boxes, clicks so far (padded with label -1), previous logits."""

    def __init__(self, batch: int, boxes: list[list[float]] | None) -> None:
        self.boxes = None if boxes is None else torch.tensor(boxes, dtype=torch.float32)
        self.clicks: list[list[tuple[float, float, int]]] = [[] for _ in range(batch)]
        self.prev: torch.Tensor | None = None

    def add(self, i: int, row: int, col: int, positive: bool) -> None:
        self.clicks[i].append((float(col), float(row), 1 if positive else 0))

    def points(self, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor] | None:
        n = max((len(c) for c in self.clicks), default=0)
        if n == 0:
            return None
        coords = torch.zeros(len(self.clicks), n, 2)
        labels = torch.full((len(self.clicks), n), -1, dtype=torch.int64)
        for i, cl in enumerate(self.clicks):
            for j, (x, y, lab) in enumerate(cl):
                coords[i, j, 0], coords[i, j, 1], labels[i, j] = x, y, lab
        return coords.to(device), labels.to(device)


def predict(model: torch.nn.Module, emb: torch.Tensor, state: PromptState, bf16: bool = False) -> torch.Tensor:
    """Low-res logits (B, 1, 256, 256) float32, on the model's device (the prompts and ``emb`` are moved there)."""
    device = module_device(model.mask_decoder)
    boxes = None if state.boxes is None else state.boxes.to(device)
    prev = None if state.prev is None else state.prev.to(device)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        pe = model.prompt_encoder.get_dense_pe()
        sparse, dense = encode_prompts(model.prompt_encoder, state.points(device), boxes, prev, emb.shape[0])
        logits, _ = decode_batch(model.mask_decoder, pe, emb.to(device), sparse, dense)
    return logits.float()


def add_error_clicks(state: PromptState, logits: torch.Tensor, masks: np.ndarray, hw: Sequence[tuple[int, int]]) -> None:
    pred = (logits[:, 0] > 0).cpu().numpy()
    for i, (h, w) in enumerate(hw):
        click = next_click(pred[i, :h, :w], masks[i, :h, :w])
        if click is not None:
            state.add(i, click.row, click.col, click.positive)


def start_state(masks: np.ndarray, hw: Sequence[tuple[int, int]], use_box: bool, jitter: float, rng: np.random.Generator) -> PromptState:
    if use_box:
        return PromptState(len(hw), [jitter_box(bbox(m[:h, :w]), jitter, rng, (h, w)) for m, (h, w) in zip(masks, hw)])
    state = PromptState(len(hw), None)
    empty = np.zeros_like(masks[0])
    for i, (h, w) in enumerate(hw):
        c = next_click(empty[:h, :w], masks[i, :h, :w])
        if c is not None:
            state.add(i, c.row, c.col, True)
    return state


@torch.inference_mode()
def validate(model: torch.nn.Module, val: ViewSet, clicks: int = 5, seed: int = 123, chunk: int = 16, bf16: bool = True) -> dict[str, float]:
    """At the 256 px grid: Dice after a ±10 % box; IoU after 1..``clicks`` clicks from empty; NoC@90 within ``clicks``."""
    rng = np.random.default_rng(seed)
    box_d: list[float] = []
    ious = np.zeros((len(val), clicks))
    device = module_device(model.mask_decoder)
    for s in range(0, len(val), chunk):
        idx = list(range(s, min(len(val), s + chunk)))
        emb = val.embeddings[idx].to(device).float()
        masks, hw = val.masks[idx], [val.hw[i] for i in idx]
        logits = predict(model, emb, start_state(masks, hw, True, 0.10, rng), bf16)
        pred = (logits[:, 0] > 0).cpu().numpy()
        box_d += [dice(pred[i, :h, :w], masks[i, :h, :w]) for i, (h, w) in enumerate(hw)]
        state = start_state(masks, hw, False, 0.0, rng)
        for k in range(clicks):
            if k > 0:
                add_error_clicks(state, logits, masks, hw)
            logits = predict(model, emb, state, bf16)
            state.prev = logits
            pred = (logits[:, 0] > 0).cpu().numpy()
            for j, (h, w) in enumerate(hw):
                ious[idx[j], k] = iou(pred[j, :h, :w], masks[j, :h, :w])
    reach = (ious >= 0.9).argmax(1) + 1
    reach[(ious < 0.9).all(1)] = clicks
    return {"box_dice": float(np.mean(box_d)), "iou_1": float(ious[:, 0].mean()), "iou_3": float(ious[:, min(2, clicks - 1)].mean()),
            f"iou_{clicks}": float(ious[:, -1].mean()), f"noc90_within_{clicks}": float(reach.mean())}


def finetune(
    model: torch.nn.Module,
    train: ViewSet,
    val: ViewSet | None,
    cfg: FinetuneConfig,
    progress: Callable[[dict], None] | None = None,
    cancelled: Callable[[], bool] = lambda: False,
) -> dict:
    """Train the prompt encoder + mask decoder in place; returns the last validation record."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    for p in model.image_encoder.parameters():
        p.requires_grad_(False)
    params = [p for n, p in model.named_parameters() if n.startswith(lms.DECODER_PREFIXES)]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    warm = max(1, min(50, cfg.steps // 10))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, s / cfg.steps)))))
    last: dict = {}
    device = module_device(model.mask_decoder)
    t0 = time.perf_counter()
    for step in range(1, cfg.steps + 1):
        if cancelled():
            break
        idx = rng.choice(len(train), size=min(cfg.batch, len(train)), replace=False)
        emb = train.embeddings[idx].to(device).float()
        masks, hw = train.masks[idx], [train.hw[i] for i in idx]
        state = start_state(masks, hw, bool(rng.random() < cfg.box_fraction), cfg.box_jitter, rng)
        rounds = int(rng.integers(0, cfg.max_rounds + 1))
        model.eval()
        with torch.no_grad():
            for _ in range(rounds):
                logits = predict(model, emb, state, cfg.bf16)
                add_error_clicks(state, logits, masks, hw)
                state.prev = logits
        model.train()
        logits = predict(model, emb, state, cfg.bf16)
        target = torch.from_numpy(masks[:, None].astype(np.float32)).to(device)
        loss = masked_dice_bce_loss(logits, target, valid_area(hw).to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        record = {"step": step, "loss": round(float(loss.detach()), 4), "rounds": rounds, "elapsed_s": round(time.perf_counter() - t0, 1)}
        if val is not None and (step % cfg.val_every == 0 or step == cfg.steps):
            model.eval()
            record["val"] = validate(model, val, bf16=cfg.bf16)
            last = record
        if progress is not None:
            progress(record)
    model.eval()
    return last


def save_decoder(model: torch.nn.Module, path: Path, base_sha: str, meta: dict) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        save_file(lms.decoder_state(model), str(tmp), metadata={"arch": ARCH, "base_sha256": base_sha, "meta": json.dumps(meta)})


def _main(argv: Sequence[str] | None = None) -> int:
    import argparse
    import signal

    from tnseg_desktop.training.embedding_views import build_views, default_cache_dir, items_from_folder

    ap = argparse.ArgumentParser(description="Fine-tune LiteMedSAM's prompt encoder + mask decoder for boxes and clicks on cached views")
    ap.add_argument("--data", action="append", required=True)
    ap.add_argument("--val", required=True)
    ap.add_argument("--views", type=int, default=4)
    ap.add_argument("--cache", default=None)
    ap.add_argument("--out", required=True)
    for f in ("steps", "batch", "max_rounds", "val_every", "seed", "threads"):
        ap.add_argument("--" + f.replace("_", "-"), type=int, default=getattr(FinetuneConfig, f))
    ap.add_argument("--lr", type=float, default=FinetuneConfig.lr)
    ap.add_argument("--only-cached", action="store_true", help="train on the views already cached, computing none")
    args = ap.parse_args(list(argv) if argv is not None else None)
    cfg = FinetuneConfig(steps=args.steps, batch=args.batch, lr=args.lr, max_rounds=args.max_rounds, val_every=args.val_every, seed=args.seed, threads=args.threads)
    torch.set_num_threads(cfg.threads)
    stop = {"flag": False}
    signal.signal(signal.SIGINT, lambda *_: stop.__setitem__("flag", True))
    model, sha = lms.load_litemedsam()
    cache = Path(args.cache) if args.cache else default_cache_dir()
    say = lambda r: print(json.dumps(r), flush=True)  # noqa: E731
    train_paths: list[Path] = []
    for folder in args.data:
        for paths in build_views(items_from_folder(folder), args.views, cache, model.image_encoder, sha, cancelled=lambda: stop["flag"], compute_missing=not args.only_cached):
            train_paths += paths
    val_paths = [p[0] for p in build_views(items_from_folder(args.val), 1, cache, model.image_encoder, sha)]
    train, val = ViewSet.load(train_paths), ViewSet.load(val_paths)
    say({"train_views": len(train), "val_views": len(val)})
    say({"step": 0, "val": validate(model, val)})
    last = finetune(model, train, val, cfg, progress=lambda r: say(r) if "val" in r or r["step"] % 20 == 0 else None, cancelled=lambda: stop["flag"])
    save_decoder(model, Path(args.out), sha, {"config": cfg.__dict__, "views": args.views, "data": args.data, "last_val": last.get("val")})
    say({"saved": args.out})
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
