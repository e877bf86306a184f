"""Which refiner to use: the user's setting, or by default the best one whose weights are present.

SAM refiners come from ``tnseg_desktop.engine.sam_refiner`` when that module
is installed; tnseg-lite is available whenever its weights resolve.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from tnseg_desktop.engine.refiner_base import Refiner
from tnseg_desktop.errors import UserFacingError

log = logging.getLogger(__name__)

AUTO = "auto"
LITE = "tnseg-lite"
LITEMEDSAM = "litemedsam"
LITEMEDSAM_THYROID = "litemedsam-thyroid"
LITEMEDSAM_NAMES = (LITEMEDSAM_THYROID, LITEMEDSAM)
HYBRID = "litemedsam+tnseg-lite"  # boxes by litemedsam-thyroid (or stock), clicks by tnseg-lite on that mask
# best first: the hybrid (litemedsam-thyroid box, tnseg-lite clicks); litemedsam-thyroid alone gets worse with clicks
# after its box on ddti/val (NoC@90 16.5 from a box; figures in models/README.md);
# stock LiteMedSAM was trained with boxes only (a lone click gives an empty mask), so it ranks last
RANKING = (HYBRID, LITEMEDSAM_THYROID, "sam-vit-h", "sam-vit-l", "sam-vit-b", "mobilesam", LITE, LITEMEDSAM)


def _litemedsam_names() -> list[str]:
    try:
        from tnseg_desktop.model import registry

        return [n for n in LITEMEDSAM_NAMES if n in registry.load_registry() and registry.status(n) == registry.INSTALLED]
    except Exception as exc:  # an unreadable registry must not hide tnseg-lite
        log.warning("LiteMedSAM refiners unavailable: %s", exc)
        return []


def _sam_names() -> list[str]:
    try:
        from tnseg_desktop.engine.sam_refiner import available_sam_refiners
    except ImportError:
        return []
    try:
        return list(available_sam_refiners())
    except Exception as exc:  # a broken optional backend must not hide tnseg-lite
        log.warning("SAM refiners unavailable: %s", exc)
        return []


def _lite_available(lite_weights: str) -> bool:
    from tnseg_desktop.model.resolve import resolve_lite_weights

    try:
        resolve_lite_weights(lite_weights)
        return True
    except UserFacingError:
        return False


def available_refiners(lite_weights: str = LITE) -> list[str]:
    """Refiner names whose weights are present, best first."""
    names = set(_sam_names()) | set(_litemedsam_names())
    if LITEMEDSAM not in names:
        names.discard(LITEMEDSAM_THYROID)  # its decoder needs the stock encoder
    if _lite_available(lite_weights):
        names.add(LITE)
        if names & set(LITEMEDSAM_NAMES):
            names.add(HYBRID)
    ranked = [n for n in RANKING if n in names]
    return ranked + sorted(names - set(ranked))


def resolve_refiner_name(setting: str | None, lite_weights: str = LITE) -> str:
    """The setting itself when it names an available refiner; for ``auto``/None the best available."""
    available = available_refiners(lite_weights)
    if setting and setting != AUTO:
        if setting in available or setting.endswith(".safetensors"):
            return setting
        raise UserFacingError(f"The refiner '{setting}' has no weights installed; available: {', '.join(available) or 'none'}.")
    if not available:
        raise UserFacingError("No refiner weights are installed; import tnseg-lite or a SAM checkpoint with 'tnseg-desktop models import'.")
    return available[0]


def make_refiner(name: str, device: torch.device | str = "cpu", lite_weights: str = LITE, decoder_weights: str | None = None,
                 cache: Any = None) -> Refiner:
    """A refiner by name: ``tnseg-lite`` (weights ``lite_weights``), a .safetensors path, or a SAM name.

    ``decoder_weights`` is litemedsam-thyroid's decoder to use (a retrained version), for it and the hybrid;
    ``cache`` an embedding cache to keep using (LiteMedSAM's encoder is the same whatever its decoder).
    """
    if name == LITE or name.endswith(".safetensors"):
        from tnseg_desktop.engine.lite_refiner import LiteRefiner
        from tnseg_desktop.model.lite_predictor import LitePredictor
        from tnseg_desktop.model.lite_weights import load_lite
        from tnseg_desktop.model.resolve import resolve_lite_weights

        path = resolve_lite_weights(lite_weights if name == LITE else name)
        return LiteRefiner(LitePredictor(load_lite(path, device), device))
    if name == HYBRID:
        from tnseg_desktop.engine.hybrid_refiner import HybridRefiner

        sam = LITEMEDSAM_THYROID if LITEMEDSAM_THYROID in available_refiners(lite_weights) else LITEMEDSAM
        return HybridRefiner(make_refiner(sam, device, lite_weights, decoder_weights, cache), make_refiner(LITE, device, lite_weights), name=HYBRID)
    if name in LITEMEDSAM_NAMES:
        from pathlib import Path

        from tnseg_desktop.engine.litemedsam_refiner import make_litemedsam_refiner

        decoder = Path(decoder_weights) if decoder_weights and name == LITEMEDSAM_THYROID else None
        return make_litemedsam_refiner(name, torch.device(device), cache=cache, decoder_path=decoder)
    try:
        from tnseg_desktop.engine.sam_refiner import make_sam_refiner
    except ImportError:
        raise UserFacingError(f"The refiner '{name}' is not available in this installation.") from None
    return make_sam_refiner(name, torch.device(device))


def choose_refiner(setting: str | None = AUTO, device: torch.device | str = "cpu", lite_weights: str = LITE) -> Refiner:
    return make_refiner(resolve_refiner_name(setting, lite_weights), device, lite_weights)
