"""Make torchvision importable on a CPU-only torch build (DESIGN.md section 2).

The PyPI torchvision 0.28.0 wheel expects its compiled ``torchvision::nms``
operator; with a CPU-only torch it is missing (and its quantized twin
``qnms``) and ``import torchvision``
fails with "operator torchvision::nms does not exist". ``segment-anything``
and ``open_clip_torch`` import torchvision, so we register a pure-torch CPU
kernel for that one operator and import again. Nothing is done when the
plain import works.
"""

from __future__ import annotations

import sys
from types import ModuleType

import torch

_LIB: torch.library.Library | None = None  # kept alive: dropping it unregisters the operator


def _nms_cpu(dets: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression; returns kept indices by decreasing score."""
    if dets.numel() == 0:
        return torch.empty((0,), dtype=torch.int64, device=dets.device)
    x1, y1, x2, y2 = dets.unbind(1)
    areas = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    order = scores.argsort(descending=True)
    keep: list[int] = []
    suppressed = torch.zeros(dets.shape[0], dtype=torch.bool)
    for idx in order.tolist():
        if suppressed[idx]:
            continue
        keep.append(idx)
        xx1 = torch.maximum(x1[idx], x1)
        yy1 = torch.maximum(y1[idx], y1)
        xx2 = torch.minimum(x2[idx], x2)
        yy2 = torch.minimum(y2[idx], y2)
        inter = (xx2 - xx1).clamp(min=0) * (yy2 - yy1).clamp(min=0)
        iou = inter / (areas[idx] + areas - inter).clamp(min=1e-12)
        suppressed |= iou > iou_threshold
    return torch.tensor(keep, dtype=torch.int64, device=dets.device)


def _register_nms() -> None:
    global _LIB
    if _LIB is not None:
        return
    lib = torch.library.Library("torchvision", "DEF")
    # torchvision's fake-tensor registrations at import name nms and qnms unconditionally
    for op in ("nms", "qnms"):
        lib.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        lib.impl(op, _nms_cpu, "CPU")
    _LIB = lib


def import_torchvision() -> ModuleType:
    """Import torchvision, registering the missing nms operator only when needed."""
    try:
        import torchvision

        return torchvision
    except RuntimeError as exc:
        if "torchvision::nms" not in str(exc):
            raise
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    _register_nms()
    import torchvision

    return torchvision
