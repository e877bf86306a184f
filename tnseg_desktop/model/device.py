"""The one device chooser: CUDA when present and working, else the CPU."""

from __future__ import annotations

import logging
import os

import torch

from tnseg_desktop.errors import UserFacingError

log = logging.getLogger(__name__)


def _cuda_works() -> bool:
    if not torch.cuda.is_available():
        return False
    try:
        torch.zeros(1, device="cuda").add_(1).item()
        return True
    except Exception as exc:  # driver mismatch, busy device, ...
        log.warning("CUDA is present but unusable (%s); using the CPU", exc)
        return False


def choose_device(preference: str = "auto") -> torch.device:
    """Resolve ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` to a usable device."""
    pref = (preference or "auto").strip().lower()
    if pref == "auto":
        return torch.device("cuda") if _cuda_works() else torch.device("cpu")
    if pref == "cpu":
        return torch.device("cpu")
    if pref.startswith("cuda"):
        if not _cuda_works():
            raise UserFacingError(f"--device {preference} was asked for, but no working CUDA GPU is available; use --device cpu or auto.")
        return torch.device(pref)
    raise UserFacingError(f"unknown device '{preference}': use auto, cpu, cuda or cuda:N.")


def threads_leaving_a_core() -> int:
    """CPU threads for model work in the desktop app: every core but one, so the window stays responsive."""
    return max(1, (os.cpu_count() or 2) - 1)


def describe_device(device: torch.device) -> str:
    """Human-readable name for the status bar: the GPU model or 'CPU (N threads)'."""
    if device.type == "cuda":
        return f"GPU: {torch.cuda.get_device_name(device)}"
    n = torch.get_num_threads()
    return f"CPU ({n} thread{'' if n == 1 else 's'})"


def is_out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower()


def cpu_has_native_bf16() -> bool:
    """True when oneDNN reports bfloat16 support on this CPU (AVX512-BF16 or AMX): bf16 autocast then pays."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False
