"""Train tnseg-med (the automatic mask) on cached LiteMedSAM views: the encoder is frozen, so a step costs only the light parts.

Views come from ``training/embedding_views`` (K augmented views per frame,
each encoded once). A step draws a batch of views, runs coarse + fine
branches and the head under bf16 autocast on the CPU, and takes BCE + Dice
inside the unpadded area. Validation (Dice at the 256 px grid, on val views)
uses an exponential moving average of the weights, which is also what is saved.

Targets (for text conditioning): each view set carries a target name; a view
teaches only its own target (partial labels: a DDTI frame says nothing about
the gland, a TG3K frame nothing about nodules). The condition of a target is
the text embedding of one of its paraphrases, drawn per sample, or the
network's learned default vector when no text encoder is used.
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from tnseg_desktop.atomic_write import atomic_path
from tnseg_desktop.model import litemedsam as lms
from tnseg_desktop.model.tnseg_med import ARCH, TnsegMed
from tnseg_desktop.training.embedding_views import load_view
from tnseg_desktop.training.losses import masked_dice_bce_loss
from tnseg_desktop.training.metrics import dice


@dataclass
class MedTrainConfig:
    steps: int = 3000
    batch: int = 8
    lr: float = 2e-3
    lr_pretrained: float | None = None  # the SAM decoder copied from LiteMedSAM (coarse "sam"); None: ``lr``
    weight_decay: float = 1e-4
    ema: float = 0.995
    val_every: int = 250
    seed: int = 0
    threads: int = 1
    bf16: bool = True
    contain: int = 0  # nodule samples per batch that also teach "the gland covers this nodule" (0: off)
    contain_weight: float = 0.5
    net: dict = field(default_factory=dict)


@dataclass
class MedViews:
    embeddings: torch.Tensor  # (N, 256, 64, 64) float16
    images: torch.Tensor  # (N, 1, 256, 256) uint8
    masks: torch.Tensor  # (N, 1, 256, 256) bool
    hw: list[tuple[int, int]]
    target: list[str]  # per view: which structure its mask shows

    @classmethod
    def load(cls, paths: Sequence[Path], target: str = "nodule") -> "MedViews":
        views = [load_view(p) for p in paths]
        return cls(
            torch.from_numpy(np.stack([v.embedding for v in views])),
            torch.from_numpy(np.stack([v.image for v in views]))[:, None],
            torch.from_numpy(np.stack([v.mask for v in views]))[:, None],
            [v.hw for v in views],
            [target] * len(views),
        )

    @classmethod
    def concat(cls, parts: Sequence["MedViews"]) -> "MedViews":
        return cls(
            torch.cat([p.embeddings for p in parts]),
            torch.cat([p.images for p in parts]),
            torch.cat([p.masks for p in parts]),
            [hw for p in parts for hw in p.hw],
            [t for p in parts for t in p.target],
        )

    def __len__(self) -> int:
        return len(self.hw)

    def batch(self, idx: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        from tnseg_desktop.training.litemedsam_finetune import valid_area

        i = torch.as_tensor(np.asarray(idx))
        return (
            self.embeddings[i].float(),
            self.images[i].float() / 255.0,
            self.masks[i].float(),
            valid_area([self.hw[j] for j in idx]),
        )


CondFn = Callable[[Sequence[str], np.random.Generator | None], torch.Tensor | None]


@torch.inference_mode()
def predict_logits(net: TnsegMed, emb: torch.Tensor, img: torch.Tensor, cond: torch.Tensor | None = None, bf16: bool = True) -> torch.Tensor:
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        out = net(emb, img, cond)
    return out.float()


def validate(net: TnsegMed, val: MedViews, cond_fn: CondFn | None = None, bf16: bool = True, chunk: int = 16) -> dict[str, float]:
    """Mean Dice per target at the 256 px grid (inside the unpadded area)."""
    net.eval()
    scores: dict[str, list[float]] = {}
    for s in range(0, len(val), chunk):
        idx = list(range(s, min(len(val), s + chunk)))
        emb, img, _, _ = val.batch(idx)
        targets = [val.target[i] for i in idx]
        cond = cond_fn(targets, None) if cond_fn is not None else None
        pred = (predict_logits(net, emb, img, cond, bf16) > 0)[:, 0].numpy()
        for j, i in enumerate(idx):
            h, w = val.hw[i]
            scores.setdefault(val.target[i], []).append(dice(pred[j, :h, :w], val.masks[i, 0, :h, :w].numpy()))
    out = {f"dice_{t}": float(np.mean(v)) for t, v in scores.items()}
    out["dice"] = float(np.mean([d for v in scores.values() for d in v]))
    return out


def train_med(
    net: TnsegMed,
    train: MedViews,
    val: MedViews | None,
    cfg: MedTrainConfig,
    cond_fn: CondFn | None = None,
    progress: Callable[[dict], None] | None = None,
    cancelled: Callable[[], bool] = lambda: False,
) -> tuple[TnsegMed, dict]:
    """Train ``net``; returns the EMA copy (what is validated and kept) and the last validation record."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    ema = copy.deepcopy(net).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    opt = torch.optim.AdamW(param_groups(net, cfg), weight_decay=cfg.weight_decay)
    warm = max(1, min(100, cfg.steps // 20))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm) * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, s / cfg.steps)))))
    last: dict = {}
    t0 = time.perf_counter()
    for step in range(1, cfg.steps + 1):
        if cancelled():
            break
        net.train()
        idx = rng.choice(len(train), size=min(cfg.batch, len(train)), replace=False).tolist()
        emb, img, target, area = train.batch(idx)
        cond = cond_fn([train.target[i] for i in idx], rng) if cond_fn is not None else None
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            logits = net(emb, img, cond)
        loss = masked_dice_bce_loss(logits, target, area)
        if cfg.contain and cond_fn is not None:
            loss = loss + cfg.contain_weight * _containment_loss(net, train, idx, emb, img, target, area, cond_fn, rng, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        decay = min(cfg.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, pn in zip(ema.parameters(), net.parameters()):
                pe.mul_(decay).add_(pn.detach(), alpha=1 - decay)
        record = {"step": step, "loss": round(float(loss.detach()), 4), "elapsed_s": round(time.perf_counter() - t0, 1)}
        if val is not None and (step % cfg.val_every == 0 or step == cfg.steps):
            record["val"] = validate(ema, val, cond_fn, cfg.bf16)
            last = record
        if progress is not None:
            progress(record)
    return ema, last


def param_groups(net: TnsegMed, cfg: MedTrainConfig) -> list[dict]:
    """The pretrained decoder (if any) at ``lr_pretrained``, everything new at ``lr``."""
    pre = [p for n, p in net.named_parameters() if n.startswith("sam.decoder.")]
    new = [p for n, p in net.named_parameters() if not n.startswith("sam.decoder.")]
    groups = [{"params": new, "lr": cfg.lr}]
    if pre:
        groups.append({"params": pre, "lr": cfg.lr_pretrained if cfg.lr_pretrained is not None else cfg.lr})
    return groups


def _containment_loss(net: TnsegMed, train: MedViews, idx: Sequence[int], emb: torch.Tensor, img: torch.Tensor, target: torch.Tensor,
                      area: torch.Tensor, cond_fn: CondFn, rng: np.random.Generator, cfg: MedTrainConfig) -> torch.Tensor:
    """Nodules lie inside the thyroid: a nodule frame's mask is a partial label of the gland (its pixels are gland;
    nothing is said about the rest), so the gland target is asked to cover the nodule's pixels and nothing else."""
    from tnseg_desktop.model.prompt_targets import GLAND, NODULE

    rows = [j for j, i in enumerate(idx) if train.target[i] == NODULE and bool(target[j].any())][: cfg.contain]
    if not rows:
        return torch.zeros(())
    sel = torch.as_tensor(rows)
    cond = cond_fn([GLAND] * len(rows), rng)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
        logits = net(emb[sel], img[sel], cond)
    inside = target[sel] * area[sel]
    return masked_dice_bce_loss(logits, inside, inside)


def text_condition(encoder, p_default: float = 0.3) -> CondFn:
    """Per sample, a random paraphrase of its target (training) or the target's canonical name (``rng`` None);
    a share ``p_default`` of nodule samples gets a zero row, i.e. the learned no-text default."""
    from tnseg_desktop.model.prompt_targets import NODULE, TARGET_PHRASES, TARGET_TITLES

    def cond(targets: Sequence[str], rng: np.random.Generator | None) -> torch.Tensor:
        phrases, blank = [], []
        for t in targets:
            if rng is None:
                phrases.append(TARGET_TITLES[t])
                blank.append(False)
            else:
                options = TARGET_PHRASES[t]
                phrases.append(options[int(rng.integers(len(options)))])
                blank.append(t == NODULE and bool(rng.random() < p_default))
        vec = torch.from_numpy(encoder.encode(phrases))
        vec[torch.tensor(blank, dtype=torch.bool)] = 0.0
        return vec

    return cond


def save_med(net: TnsegMed, path: Path, base_sha: str, meta: dict) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().clone() for k, v in net.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={"arch": ARCH, "config": json.dumps(net.config), "encoder_sha256": base_sha, "meta": json.dumps(meta)})


def _main(argv: Sequence[str] | None = None) -> int:
    import argparse
    import signal

    from tnseg_desktop.training.embedding_views import build_views, default_cache_dir, items_from_folder

    ap = argparse.ArgumentParser(description="Train tnseg-med on cached LiteMedSAM views")
    ap.add_argument("--data", action="append", required=True, help="nodule training folder (repeatable)")
    ap.add_argument("--gland", action="append", default=[], help="thyroid-gland training folder (repeatable; enables text conditioning)")
    ap.add_argument("--gland-views", type=int, default=1)
    ap.add_argument("--text", action="store_true", help="condition on MiniLM text embeddings of target paraphrases")
    ap.add_argument("--val", required=True)
    ap.add_argument("--views", type=int, default=4)
    ap.add_argument("--cache", default=None)
    ap.add_argument("--out", required=True)
    ap.add_argument("--net", default="{}", help="JSON network config")
    ap.add_argument("--only-cached", action="store_true", help="train on the views already cached, computing none")
    for f in ("steps", "batch", "val_every", "seed", "threads"):
        ap.add_argument("--" + f.replace("_", "-"), type=int, default=getattr(MedTrainConfig, f))
    ap.add_argument("--lr", type=float, default=MedTrainConfig.lr)
    ap.add_argument("--lr-pretrained", type=float, default=None, help="learning rate of the SAM decoder copied from LiteMedSAM (--net '{\"coarse\": \"sam\"}')")
    ap.add_argument("--sam-init", default=lms.LITEMEDSAM_THYROID, help="the LiteMedSAM variant whose decoder starts the SAM coarse branch")
    ap.add_argument("--contain", type=int, default=0, help="nodule samples per batch that also teach the gland to cover the nodule")
    ap.add_argument("--contain-weight", type=float, default=MedTrainConfig.contain_weight)
    args = ap.parse_args(list(argv) if argv is not None else None)
    cfg = MedTrainConfig(steps=args.steps, batch=args.batch, lr=args.lr, val_every=args.val_every, seed=args.seed, threads=args.threads,
                         contain=args.contain, contain_weight=args.contain_weight, net=json.loads(args.net),
                         lr_pretrained=args.lr_pretrained)
    torch.set_num_threads(cfg.threads)
    stop = {"flag": False}
    signal.signal(signal.SIGINT, lambda *_: stop.__setitem__("flag", True))
    model, sha = lms.load_litemedsam()
    cache = Path(args.cache) if args.cache else default_cache_dir()
    say = lambda r: print(json.dumps(r), flush=True)  # noqa: E731
    paths: list[Path] = []
    for folder in args.data:
        for p in build_views(items_from_folder(folder), args.views, cache, model.image_encoder, sha, compute_missing=not args.only_cached):
            paths += p
    val_paths = [p[0] for p in build_views(items_from_folder(args.val), 1, cache, model.image_encoder, sha)]
    parts = [MedViews.load(paths, "nodule")]
    for folder in args.gland:
        gpaths = [p for ps in build_views(items_from_folder(folder), args.gland_views, cache, model.image_encoder, sha, compute_missing=not args.only_cached) for p in ps]
        parts.append(MedViews.load(gpaths, "gland"))
    train, val = MedViews.concat(parts), MedViews.load(val_paths, "nodule")
    net = TnsegMed(cfg.net)
    if net.sam is not None:
        init_decoder = lms.decoder_path_for(args.sam_init)
        if init_decoder is not None:
            lms.load_decoder_parts(model, init_decoder)
        net.sam.init_from(model)
    del model
    cond_fn = None
    if args.text or args.gland:
        from tnseg_desktop.model.text_encoder import default_text_encoder

        cond_fn = text_condition(default_text_encoder())
    say({"train_views": len(train), "val_views": len(val), "targets": sorted(set(train.target))})
    ema, last = train_med(net, train, val, cfg, cond_fn=cond_fn, progress=lambda r: say(r) if "val" in r or r["step"] % 50 == 0 else None, cancelled=lambda: stop["flag"])
    if cond_fn is not None:
        last.setdefault("val", {})["dice_nodule_no_text"] = validate(ema, val, None, cfg.bf16)["dice"]
        say({"no_text_val": last["val"]["dice_nodule_no_text"]})
    meta = {"config": {k: v for k, v in cfg.__dict__.items()}, "views": args.views, "sam_init": args.sam_init if net.sam is not None else None, "data": args.data, "gland": args.gland, "last_val": last.get("val")}
    meta["targets"] = sorted(set(train.target)) if cond_fn is not None else ["nodule"]
    meta["text_encoder"] = "all-minilm-l6-v2" if cond_fn is not None else None
    save_med(ema, Path(args.out), sha, meta)
    say({"saved": args.out})
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
