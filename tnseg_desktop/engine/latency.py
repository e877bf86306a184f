"""Click-refinement latency (DESIGN.md section 6: medians after warm-up) with random full-size weights.

- ``sam-vit-b`` / ``mobilesam``: one ``SamRefiner.refine`` on a frame whose
  embedding is cached (prompt encoder + mask decoder + upsampling to the
  frame), plus ``embed_ms``, the image encoder's time per frame;
- ``tnseg-lite``: one ``LiteRefiner.refine`` (zoomed-in crop, one forward pass);
- ``litemedsam``: the real package weights; ``embed_ms`` of the encoder backend the app
  uses by default, ``embed_ms_by_backend`` of fp32 eager, bf16 autocast and ONNX Runtime.

The click is the typical correction: the current mask as prior, a positive
click inside and a negative click outside it.

Besides wall-clock medians, ``*_cpu_ms`` gives the process CPU time of the
same calls: on a machine shared with other jobs the wall clock measures the
queue for a core, while CPU time (with one torch thread) is what the call
costs on an idle machine.
"""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable

import numpy as np
import torch

from tnseg_desktop.engine.refiner_base import Prompts, as_clicks

FRAME_SHAPE = (600, 800)


def synthetic_case(shape: tuple[int, int] = FRAME_SHAPE, seed: int = 0) -> tuple[np.ndarray, np.ndarray, Prompts]:
    """An ultrasound-like frame (speckle, a dark round nodule), its mask, and a two-click correction."""
    rng = np.random.default_rng(seed)
    h, w = shape
    frame = np.clip(rng.gamma(2.0, 40.0, size=shape), 0, 255).astype(np.uint8)
    yy, xx = np.mgrid[:h, :w]
    nodule = (yy - h * 0.45) ** 2 / (h * 0.12) ** 2 + (xx - w * 0.5) ** 2 / (w * 0.1) ** 2 < 1
    frame[nodule] //= 3
    prompts = Prompts(clicks=as_clicks([(int(h * 0.45), int(w * 0.5), True), (int(h * 0.1), int(w * 0.1), False)]))
    return frame, nodule, prompts


def _times_ms(fn: Callable[[], Any], n: int, warmup: int) -> tuple[list[float], list[float]]:
    """(wall-clock ms, process CPU ms) per call."""
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(n):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        wall.append((time.perf_counter() - t0) * 1000.0)
        cpu.append((time.process_time() - c0) * 1000.0)
    return wall, cpu


def _p95(values: list[float]) -> float:
    return float(np.percentile(np.asarray(values), 95))


def _lite_refiner(device: torch.device) -> tuple[Any, str]:
    """The shipped tnseg-lite when its weights are present (what users run), else random weights of its configuration."""
    from tnseg_desktop.engine.lite_refiner import LiteRefiner
    from tnseg_desktop.model.lite import TnsegLite
    from tnseg_desktop.model.lite_weights import load_lite
    from tnseg_desktop.model.resolve import resolve_lite_weights

    try:
        return LiteRefiner(load_lite(resolve_lite_weights("tnseg-lite"), device), device=str(device)), "shipped"
    except Exception:  # noqa: BLE001 - no shipped weights: same architecture, random weights
        torch.manual_seed(0)
        return LiteRefiner(TnsegLite(base_channels=16, head_hidden=32, input_size=160), device=str(device)), "random"


def _litemedsam_refiner(device: torch.device, frame: np.ndarray, embed_n: int, result: dict[str, Any]) -> Any:
    """The stock LiteMedSAM (package weights): every encoder backend timed, the app's default one kept for the clicks.

    The ONNX backend's warm-up call exports the encoder the first time (into the user's cache), untimed.
    """
    from tnseg_desktop.engine.litemedsam_refiner import PRECISIONS, LiteMedSamRefiner, default_encoder_precision
    from tnseg_desktop.model import litemedsam as lms

    model, sha = lms.load_litemedsam()
    result["weights"] = "package"
    default = default_encoder_precision(device)
    chosen = None
    by_backend: dict[str, float] = {}
    for precision in PRECISIONS if device.type == "cpu" else (default,):
        r = LiteMedSamRefiner(model, weights_sha=sha, device=device, encoder_precision=precision, encoder_threads=torch.get_num_threads())
        walls, cpus = _times_ms(lambda: r.encode(frame), embed_n, warmup=1)
        by_backend[r.encoder_precision] = round(statistics.median(walls), 1)
        if precision == default:
            chosen = r
            result["embed_ms"] = round(statistics.median(walls), 1)
            result["embed_cpu_ms"] = round(statistics.median(cpus), 1)
    result["encoder_backend"] = chosen.encoder_precision
    result["embed_ms_by_backend"] = by_backend
    chosen.prepare(frame)
    return chosen


def _load_average() -> float | None:
    try:
        import os

        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def measure_click_latency(model_name: str, device: torch.device | str = "cpu", n: int = 30, embed_n: int = 2, warmup: int = 3) -> dict[str, Any]:
    """``{"click_refine_ms" (= median_ms), "p95_ms", "embed_ms", ...}`` for one refiner name."""
    device = torch.device(device)
    frame, prior, prompts = synthetic_case()
    result: dict[str, Any] = {"model": model_name, "device": str(device), "n": n, "weights": "random", "frame": list(frame.shape), "threads": torch.get_num_threads()}
    if model_name == "tnseg-lite":
        refiner, result["weights"] = _lite_refiner(device)
        result["embed_ms"] = None
    elif model_name in ("sam-vit-b", "mobilesam"):
        from tnseg_desktop.engine.sam_refiner import SamRefiner
        from tnseg_desktop.model.sam_adapter import SAM_ARCH, build_sam

        torch.manual_seed(0)
        refiner = SamRefiner(build_sam(SAM_ARCH[model_name]), name=model_name, device=device)
        embeds, embeds_cpu = _times_ms(lambda: refiner.encode(frame), embed_n, warmup=1)
        result["embed_ms"] = round(statistics.median(embeds), 1)
        result["embed_cpu_ms"] = round(statistics.median(embeds_cpu), 1)
        refiner.prepare(frame)
    elif model_name == "litemedsam":
        refiner = _litemedsam_refiner(device, frame, embed_n, result)
    else:
        raise ValueError(f"no click-latency benchmark for {model_name!r}")

    def click() -> None:
        refiner.refine(frame, prior, prompts)
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    times, cpu = _times_ms(click, n, warmup)
    result["median_ms"] = result["click_refine_ms"] = round(statistics.median(times), 2)
    result["p95_ms"] = round(_p95(times), 2)
    result["click_cpu_ms"] = round(statistics.median(cpu), 2)
    result["load_average"] = _load_average()
    return result
