"""``tnseg-desktop bench --json OUT``: timing benchmarks (DESIGN.md section 5).

Medians after warm-up. Model timings use random weights where the real ones
are not installed: speed does not depend on weight values.

Output keys: ``device``, ``cine_load_ms_per_frame``, ``auto_mask_ms``,
``embed_ms`` and ``click_refine_ms`` (each ``{model name: ms}``; ``litemedsam``
with its real package weights and the app's default encoder backend),
``encoder_backends`` (``{"litemedsam": {"default": ..., "embed_ms": {"fp32": ms,
"bf16": ms, "onnx": ms}}}``), plus ``notes`` saying what was skipped and why.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

CINE_FIXTURE = "color3d_jpeg_baseline.dcm"
FRAME_SHAPE = (480, 640)  # a typical ultrasound frame


def median_ms(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000.0)
    return round(statistics.median(times), 2)


def synthetic_frame(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, FRAME_SHAPE, dtype=np.uint8)


def bench_tnseg_lite(device: torch.device, repeats: int) -> tuple[float, str]:
    from tnseg_desktop.model.lite import TnsegLite
    from tnseg_desktop.model.lite_predictor import LitePredictor
    from tnseg_desktop.model.lite_weights import load_lite
    from tnseg_desktop.paths import shipped_models_dir

    shipped = shipped_models_dir() / "tnseg-lite.safetensors"
    if shipped.is_file():
        model, source = load_lite(shipped, device), "shipped weights"
    else:
        model, source = TnsegLite(), "random weights (shipped file not found)"
    predictor = LitePredictor(model, device)
    frame = synthetic_frame()
    return median_ms(lambda: predictor.auto_probs([frame]), repeats), f"tnseg-lite: {source}, input {model.input_size}"


def bench_clip_tnseg(device: torch.device, repeats: int) -> tuple[float, str]:
    from tnseg_desktop.model.torchvision_compat import import_torchvision

    import_torchvision()
    import open_clip

    from tnseg_desktop.model.clip_tnseg import ClipTnseg
    from tnseg_desktop.model.clip_tnseg_predictor import ClipTnsegPredictor

    torch.manual_seed(0)
    clip = open_clip.create_model("ViT-B-16", pretrained=None, force_quick_gelu=True)
    model = ClipTnseg(clip)
    predictor = ClipTnsegPredictor(model, device)
    frame = synthetic_frame()
    return median_ms(lambda: predictor.auto_probs([frame]), repeats), f"clip-tnseg: random ViT-B-16, input {model.input_size}"


def cine_fixture_path() -> Path | None:
    try:
        from pydicom.data import get_testdata_file

        found = get_testdata_file(CINE_FIXTURE)
    except Exception:  # pydicom-data missing or unable to fetch: skip, the note says so
        return None
    return Path(found) if found else None


def bench_cine_load(repeats: int = 3) -> tuple[float | None, str]:
    try:
        from tnseg_desktop.io import open_source
    except ImportError:
        try:
            from tnseg_desktop.io.source import open_source  # type: ignore[no-redef]
        except ImportError as exc:
            return None, f"cine load skipped: tnseg_desktop.io.open_source not importable ({exc})"
    path = cine_fixture_path()
    if path is None:
        return None, f"cine load skipped: {CINE_FIXTURE} (pydicom-data) not found"
    per_frame = []
    n_frames = 0
    for _ in range(repeats):
        start = time.perf_counter()
        with open_source(path) as cine:
            n_frames = len(cine)
            for i in range(n_frames):
                cine.frame(i)
        per_frame.append((time.perf_counter() - start) * 1000.0 / max(1, n_frames))
    return round(statistics.median(per_frame), 2), f"cine load: {path.name}, {n_frames} frames, fresh open each run"


def bench_click_latency(device: torch.device, names: tuple[str, ...]) -> tuple[dict[str, dict[str, float]], list[str]]:
    out: dict[str, dict[str, Any]] = {"embed_ms": {}, "click_refine_ms": {}, "encoder_backends": {}}
    notes: list[str] = []
    try:
        from tnseg_desktop.engine.latency import measure_click_latency
    except ImportError as exc:
        return out, [f"click latency skipped: tnseg_desktop.engine.latency not available ({exc})"]
    for name in names:
        try:
            measured = measure_click_latency(name, device)
        except Exception as exc:  # a missing checkpoint for one refiner must not lose the other figures
            notes.append(f"{name}: click latency skipped ({' '.join(str(exc).split())[:200]})")
            continue
        for key in ("embed_ms", "click_refine_ms"):
            if measured.get(key) is not None:
                out[key][name] = float(measured[key])
        if measured.get("embed_ms_by_backend"):
            out["encoder_backends"][name] = {"default": measured["encoder_backend"], "embed_ms": measured["embed_ms_by_backend"]}
    return out, notes


def collect(device: torch.device, repeats: int = 5, clip_repeats: int = 3) -> dict[str, Any]:
    from tnseg_desktop.model.device import describe_device

    result: dict[str, Any] = {
        "device": describe_device(device),
        "torch": torch.__version__,
        "auto_mask_ms": {},
        "embed_ms": {},
        "click_refine_ms": {},
        "cine_load_ms_per_frame": None,
        "notes": [],
    }
    result["cine_load_ms_per_frame"], note = bench_cine_load()
    result["notes"].append(note)
    for name, fn, n in (("tnseg-lite", bench_tnseg_lite, repeats), ("clip-tnseg", bench_clip_tnseg, clip_repeats)):
        ms, note = fn(device, n)
        result["auto_mask_ms"][name] = ms
        result["notes"].append(note)
    latency, notes = bench_click_latency(device, ("tnseg-lite", "sam-vit-b", "mobilesam", "litemedsam"))
    result["embed_ms"].update(latency["embed_ms"])
    result["click_refine_ms"].update(latency["click_refine_ms"])
    result["encoder_backends"] = latency["encoder_backends"]
    result["notes"].extend(notes)
    return result


def run_bench(args: argparse.Namespace) -> int:
    from tnseg_desktop.model.device import choose_device

    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(int(args.threads))
    device = choose_device(getattr(args, "device", "auto"))
    result = collect(device)
    out = Path(args.json_out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0
