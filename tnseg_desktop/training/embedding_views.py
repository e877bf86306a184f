"""Augmented views of training frames with their frozen-encoder embeddings, computed once and kept on disk.

With the LiteMedSAM encoder frozen, every augmented view costs one encoder
pass (about a second on this CPU) and everything trained on top of it costs
milliseconds. So K views per frame are made once: view 0 is the frame itself,
view 1 its left-right mirror, views 2.. a seeded random affine (flip, zoom,
shift, rotation) and intensity change (gamma, contrast, speckle, blur). Each
view is stored as one ``.npz``: the fp16 embedding (256x64x64), the encoder's
input image and the mask on the same padded 256 grid, and the unpadded size.

A view's file name hashes the encoder weights' sha256, the precision, the
frame's and mask's pixels and the view's parameters, so a change in any of
them makes a new file and an old one is never read for it. The job skips
views that exist (resumable), reports progress after each view and stops
between views when ``cancelled()`` is true.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import cv2
import numpy as np
import torch

from tnseg_desktop.atomic_write import atomic_path
from tnseg_desktop.model import litemedsam as lms
from tnseg_desktop.training.augment import intensity

VIEW_FORMAT = 1


@dataclass(frozen=True)
class ViewSpec:
    """The parameters of one view of a frame (all plain numbers, so they hash and print)."""

    flip: bool = False
    zoom: float = 1.0
    angle: float = 0.0
    shift_x: float = 0.0  # fraction of the width
    shift_y: float = 0.0
    seed: int = -1  # intensity augmentation seed; -1 for none

    def as_json(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True)


def view_specs(sample_id: str, k: int, base_seed: int = 0) -> list[ViewSpec]:
    """K views of one frame: plain, mirrored, then seeded random ones (the same for the same id)."""
    specs = [ViewSpec(), ViewSpec(flip=True)][:k]
    seed = int.from_bytes(hashlib.sha1(f"{base_seed}|{sample_id}".encode()).digest()[:4], "little")
    rng = np.random.default_rng(seed)
    while len(specs) < k:
        specs.append(
            ViewSpec(
                flip=bool(rng.random() < 0.5),
                zoom=round(float(math.exp(rng.uniform(math.log(0.8), math.log(1.35)))), 4),
                angle=round(float(rng.uniform(-12, 12)) if rng.random() < 0.6 else 0.0, 3),
                shift_x=round(float(rng.uniform(-0.08, 0.08)), 4),
                shift_y=round(float(rng.uniform(-0.08, 0.08)), 4),
                seed=int(rng.integers(0, 2**31 - 1)),
            )
        )
    return specs


def apply_view(image: np.ndarray, mask: np.ndarray, spec: ViewSpec) -> tuple[np.ndarray, np.ndarray]:
    """The view at the frame's own size (uint8 image, bool mask); the frame's aspect is kept."""
    h, w = image.shape[:2]
    img, msk = image, mask.astype(np.uint8)
    if spec.zoom != 1.0 or spec.angle or spec.shift_x or spec.shift_y:
        m = cv2.getRotationMatrix2D((w / 2, h / 2), spec.angle, spec.zoom)
        m[0, 2] += spec.shift_x * w
        m[1, 2] += spec.shift_y * h
        img = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        msk = cv2.warpAffine(msk, m, (w, h), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if spec.flip:
        img, msk = img[:, ::-1], msk[:, ::-1]
    if spec.seed >= 0:
        img = (intensity(np.ascontiguousarray(img), np.random.default_rng(spec.seed)) * 255.0 + 0.5).astype(np.uint8)
    return np.ascontiguousarray(img), np.ascontiguousarray(msk) > 0


def _pixels_digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha1()
    for a in arrays:
        h.update(f"{a.shape}|{a.dtype.str}|".encode())
        h.update(np.ascontiguousarray(a).data)
    return h.hexdigest()


def view_file(cache_dir: Path, weights_sha: str, precision: str, image: np.ndarray, mask: np.ndarray, spec: ViewSpec) -> Path:
    key = hashlib.sha1(f"{VIEW_FORMAT}|{weights_sha}|{precision}|{_pixels_digest(image, mask)}|{spec.as_json()}".encode()).hexdigest()
    return cache_dir / weights_sha[:16] / f"{key}.npz"


@dataclass
class View:
    embedding: np.ndarray  # float16 (256, 64, 64)
    image: np.ndarray  # uint8 (256, 256): the encoder's input (min-max scaled, padded)
    mask: np.ndarray  # bool (256, 256) on the same grid
    hw: tuple[int, int]  # the unpadded part


def load_view(path: Path) -> View:
    with np.load(path) as z:
        return View(z["embedding"], z["image"], z["mask"].astype(bool), (int(z["hw"][0]), int(z["hw"][1])))


def save_view(path: Path, view: View) -> None:
    """Write one view file atomically: the app (at accept) and the worker may write the same name at once, harmlessly."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, embedding=view.embedding, image=view.image, mask=view.mask.astype(np.uint8), hw=np.array(view.hw, dtype=np.int32))


def module_device(module: torch.nn.Module) -> torch.device:
    """The device of ``module``'s weights (the CPU for a module without any)."""
    for p in module.parameters():
        return p.device
    return torch.device("cpu")


def encode_inputs(encoder: torch.nn.Module, x: np.ndarray, precision: str) -> np.ndarray:
    """(3, 256, 256) float32 -> the (256, 64, 64) float32 embedding, on the CPU.

    Runs on the encoder's own device; ``bf16`` runs under that device's bf16 autocast.
    """
    device = module_device(encoder)
    t = torch.from_numpy(x)[None].to(device)
    with torch.inference_mode():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            emb = encoder(t)
    return emb[0].float().cpu().numpy()


def _view(x: np.ndarray, hw: tuple[int, int], mask: np.ndarray, embedding: np.ndarray) -> View:
    grid_mask = lms.mask_to_input(mask) > 0.5
    return View(embedding.astype(np.float16), (x[0] * 255.0 + 0.5).astype(np.uint8), grid_mask, hw)


def make_view(encoder: torch.nn.Module, image: np.ndarray, mask: np.ndarray, spec: ViewSpec, precision: str) -> View:
    img, msk = apply_view(image, mask, spec)
    x, hw = lms.preprocess(img)
    return _view(x, hw, msk, encode_inputs(encoder, x, precision))


def plain_view(image: np.ndarray, mask: np.ndarray, embedding: np.ndarray) -> View:
    """View 0 (``ViewSpec()``) from the frame's embedding already computed by the same encoder and precision."""
    img, msk = apply_view(image, mask, ViewSpec())
    x, hw = lms.preprocess(img)
    return _view(x, hw, msk, np.asarray(embedding, dtype=np.float32))


Item = tuple[str, np.ndarray, np.ndarray]  # id, uint8 image, bool mask


def build_views(
    items: Sequence[Item],
    k: int,
    cache_dir: Path,
    encoder: torch.nn.Module,
    weights_sha: str,
    precision: str = "bf16",
    progress: Callable[[dict], None] | None = None,
    cancelled: Callable[[], bool] = lambda: False,
    base_seed: int = 0,
    compute_missing: bool = True,
) -> list[list[Path]]:
    """Every frame's K view files (made when missing); returns per frame the list of its view paths.

    Stops early (returning only complete frames) when ``cancelled()`` turns true.
    With ``compute_missing=False`` only the views already on disk are listed.
    """
    out: list[list[Path]] = []
    total = len(items) * k
    done = made = 0
    times: list[float] = []
    for sid, image, mask in items:
        paths = []
        for spec in view_specs(sid, k, base_seed):
            if cancelled():
                return out
            path = view_file(cache_dir, weights_sha, precision, image, mask, spec)
            if not path.is_file() and not compute_missing:
                continue
            view_s = 0.0
            if not path.is_file():
                t0 = time.perf_counter()
                save_view(path, make_view(encoder, image, mask, spec, precision))
                view_s = time.perf_counter() - t0
                times.append(view_s)
                made += 1
            paths.append(path)
            done += 1
            if progress is not None:
                per = float(np.median(times)) if times else 0.0
                # view_s: this view's encoder pass (0 when it was found in the cache)
                progress({"stage": "views", "done": done, "total": total, "made": made, "view_s": round(view_s, 3),
                          "s_per_view": round(per, 3), "eta_s": round(per * (total - done), 1)})
        out.append(paths)
    return out


def items_from_folder(folder: str | Path) -> list[Item]:
    from tnseg_desktop.training.data import load_folder

    return [(s.id, s.image, s.mask) for s in load_folder(folder)]


def default_cache_dir() -> Path:
    from tnseg_desktop.paths import view_cache_dir

    return view_cache_dir()


def _main(argv: Iterable[str] | None = None) -> int:
    import argparse
    import signal

    ap = argparse.ArgumentParser(description="Precompute K augmented LiteMedSAM views per frame of a data folder")
    ap.add_argument("--data", required=True, action="append")
    ap.add_argument("--views", type=int, default=4)
    ap.add_argument("--cache", default=None)
    ap.add_argument("--precision", choices=("fp32", "bf16"), default="bf16")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(list(argv) if argv is not None else None)
    torch.set_num_threads(args.threads)
    stop = {"flag": False}
    signal.signal(signal.SIGINT, lambda *_: stop.__setitem__("flag", True))
    model, sha = lms.load_litemedsam()
    cache = Path(args.cache) if args.cache else default_cache_dir()
    for folder in args.data:
        items = items_from_folder(folder)
        build_views(items, args.views, cache, model.image_encoder, sha, args.precision,
                    progress=lambda r: print(json.dumps(r), flush=True) if r["done"] % 20 == 0 or r["done"] == r["total"] else None,
                    cancelled=lambda: stop["flag"])
        if stop["flag"]:
            print("cancelled; the views made so far are kept and the next run resumes", flush=True)
            return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
