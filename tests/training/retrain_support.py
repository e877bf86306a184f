"""Synthetic ultrasound-like frames, a store of accepted edits on them, and tiny tnseg-lite models for retraining tests."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np

from tnseg_desktop.io import open_source
from tnseg_desktop.model.lite import TnsegLite
from tnseg_desktop.model.lite_weights import save_lite
from tnseg_desktop.store import AnnotationStore, EditInfo
from tnseg_desktop.training.job import frame_key, is_validation_frame
from tnseg_desktop.training.retrain import RetrainSettings

SIZE = 64


def synthetic_frame(rng: np.random.Generator, size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """A dark round 'nodule' in bright speckle; the mask is the nodule."""
    yy, xx = np.mgrid[:size, :size]
    r = rng.uniform(0.15, 0.3) * size
    cy, cx = rng.uniform(r + 2, size - r - 2, size=2)
    mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    img = rng.normal(150, 25, (size, size))
    img[mask] = rng.normal(50, 15, int(mask.sum()))
    return np.clip(img, 0, 255).astype(np.uint8), mask


def write_cine_folder(folder: Path, n: int, seed: int = 0) -> list[np.ndarray]:
    """n frames as PNGs in one folder (opened as one cine); returns the true masks."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    masks = []
    for i in range(n):
        img, mask = synthetic_frame(rng)
        cv2.imwrite(str(folder / f"frame{i:03d}.png"), img)
        masks.append(mask)
    return masks


def add_study(store: AnnotationStore, folder: Path) -> tuple[int, str]:
    cine = open_source(folder)
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(folder.glob("*.png")))).hexdigest()
    return store.add_study(cine.meta, digest), digest


def accept_all(store: AnnotationStore, study_id: int, masks: list[np.ndarray], invert_train: bool = False, content_hash: str = "") -> None:
    """Accept every frame with its true mask (or, for a sabotaged run, the inverse on training frames)."""
    for i, m in enumerate(masks):
        final = m
        if invert_train and not is_validation_frame(frame_key(content_hash, i)):
            final = ~m
        store.accept(study_id, i, final, edit_info=EditInfo(tool="paint"))


def tiny_model(seed: int = 0) -> TnsegLite:
    import torch

    torch.manual_seed(seed)
    return TnsegLite(base_channels=8, head_hidden=16, input_size=SIZE)


def store_with_edits(root: Path, n: int = 30, seed: int = 0, invert_train: bool = False) -> tuple[AnnotationStore, Path]:
    """A store holding n accepted frames of one synthetic cine and a tiny base model recorded as the active version."""
    from tnseg_desktop.training import versions

    masks = write_cine_folder(root / "cine", n, seed)
    store = AnnotationStore(root / "store")
    sid, digest = add_study(store, root / "cine")
    accept_all(store, sid, masks, invert_train, digest)
    base = save_lite(tiny_model(seed), root / "base.safetensors", {"note": "tiny test base"})
    versions.ensure_base_version(store, "tiny-base", base)
    return store, base


def fast_settings(**kw) -> RetrainSettings:
    cfg = dict(size=SIZE, batch=4, lr=3e-3, warmup=3, val_every=1000, p_auto=1.0, aug_strength=0.0)
    cfg.update(kw.pop("train_config", {}))
    base = dict(min_new_frames=5, steps=30, device="cpu", threads=1, nice=0, replay_root=None, train_config=cfg, decoder=False)
    base.update(kw)
    return RetrainSettings(**base)
