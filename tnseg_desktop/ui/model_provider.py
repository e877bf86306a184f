"""Which models the editing UI can use, and loading them (called on a worker thread).

Kept apart from the controller so tests can hand in tiny random networks and a
machine without weights can be simulated.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from tnseg_desktop.model.ensemble import ENSEMBLE

log = logging.getLogger(__name__)

LITE = "tnseg-lite"
HYBRID = "litemedsam+tnseg-lite"
DECODER_REFINERS = ("litemedsam-thyroid", HYBRID)  # the refiners that use litemedsam-thyroid's (retrainable) decoder
IMPORT_HINT = "tnseg-desktop models import FILE"


@dataclass(frozen=True)
class MissingModel:
    name: str
    purpose: str


@dataclass
class LoadedModels:
    auto: Any = None  # AutoSegmenter
    refiner: Any = None  # Refiner
    clip: Any = None  # text-prompt probability-map predictor
    auto_name: str | None = None
    refiner_name: str | None = None
    device_text: str = "CPU"
    problems: list[str] | None = None  # one sentence per model that could not be loaded
    version_unusable: bool = False  # the store's active version failed its check: the shipped tnseg-lite is loaded
    decoder_name: str | None = None  # the LiteMedSAM decoder version the box tool uses (litemedsam-thyroid or a retrained one)
    decoder_file: str | None = None


# the models whose absence the banner reports, and what they are for; the optional ones (CLIP-TNseg,
# SAM, ...) are listed with what each adds in Help › Models, never in a warning
REQUIRED_MODELS = (
    (LITE, "automatic masks and click refinement"),
)


class ModelProvider:
    """The real models, found through the weights registry."""

    def __init__(self, device: str = "auto", store: Any = None) -> None:
        self.device = device
        self.store = store  # when given, tnseg-lite means the store's active (retrained) version
        self.lite_problem: str | None = None  # why the active version could not be used, the last time
        self.decoder_problem: str | None = None  # the same for the active decoder version

    def lite_weights(self) -> str:
        """The tnseg-lite weights in use: the active retrained version, else the shipped file.

        A missing or damaged version file falls back to the shipped model, never silently: ``lite_problem``
        says so and :meth:`load` reports it.
        """
        self.lite_problem = None
        if self.store is None:
            return LITE
        try:
            from tnseg_desktop.training.versions import active_weights

            return str(active_weights(self.store)[1])
        except Exception as exc:
            from tnseg_desktop.ui.messages import user_message

            log.warning("active model version unusable, using the shipped tnseg-lite: %s", exc)
            self.lite_problem = (f"{user_message(exc, 'The active model version cannot be used')} The shipped tnseg-lite "
                                 "is used instead; choose a version in Training › Model Versions.")
            return LITE

    def decoder_weights(self) -> tuple[str | None, str | None]:
        """(version name, file) of litemedsam-thyroid's decoder in use: the store's active decoder version, else the
        shipped file (None, None). A version that fails its check falls back to the shipped one, and says so."""
        self.decoder_problem = None
        if self.store is None:
            return None, None
        try:
            from tnseg_desktop.training.versions import DECODER_SHIPPED

            active = self.store.active_model_version("decoder")
            if active is None or active.name == DECODER_SHIPPED:
                return None, None
            from tnseg_desktop.training.versions import weights_of

            return active.name, str(weights_of(active))
        except Exception as exc:
            from tnseg_desktop.ui.messages import user_message

            log.warning("active decoder version unusable, using the shipped litemedsam-thyroid: %s", exc)
            self.decoder_problem = (f"{user_message(exc, 'The active box-tool version cannot be used')} The shipped "
                                    "litemedsam-thyroid is used instead; choose a version in Training › Model Versions.")
            return None, None

    def _status(self, name: str) -> str:
        try:
            from tnseg_desktop.model import registry

            return registry.status(name)
        except Exception as exc:  # an unreadable registry counts as nothing installed
            log.warning("model status of %s unknown: %s", name, exc)
            return "missing"

    def missing(self) -> list[MissingModel]:
        return [MissingModel(n, p) for n, p in REQUIRED_MODELS if self._status(n) != "installed"]

    def auto_names(self) -> list[str]:
        """Automatic-mask models whose weights are present, the default first (model.resolve decides)."""
        try:
            from tnseg_desktop.model.resolve import available_auto_models

            return available_auto_models()
        except Exception as exc:
            log.warning("automatic models unavailable: %s", exc)
            return []

    def retrained_in_use(self) -> bool:
        """Whether the store's active version is one the user retrained (not the shipped tnseg-lite)."""
        if self.store is None:
            return False
        try:
            from tnseg_desktop.training.versions import SHIPPED_NAME

            active = self.store.active_model_version()
        except Exception as exc:
            log.warning("active model version unknown: %s", exc)
            return False
        return active is not None and active.name != SHIPPED_NAME

    def default_auto(self, autos: list[str]) -> str | None:
        """The automatic model when the user has not picked one: the retrained tnseg-lite when a retraining
        on this store's edits is in use (that is what "Retrain on my edits" promised), else the best installed."""
        if LITE in autos and self.retrained_in_use():
            return LITE
        return autos[0] if autos else None

    def refiner_names(self) -> list[str]:
        try:
            from tnseg_desktop.engine.refiner_choice import available_refiners

            return available_refiners()
        except Exception as exc:
            log.warning("refiners unavailable: %s", exc)
            return []

    def load(self, auto_name: str | None, refiner_name: str | None, reuse: LoadedModels | None = None) -> LoadedModels:
        """Load the chosen models (slow: call off the GUI thread). Missing ones stay None.

        The one place that decides which model plays each role: tnseg-lite, as automatic model or refiner,
        is the store's active version, read anew on every call (so a promoted or rolled-back version takes
        over here); any other model already loaded in ``reuse`` under the same name is kept as it is.
        """
        from tnseg_desktop.model.device import choose_device, describe_device

        device = choose_device(self.device)
        out = LoadedModels(device_text=describe_device(device), problems=[])
        names = self.refiner_names()
        refiner_name = refiner_name or (names[0] if names else None)
        lite_weights = self.lite_weights()
        decoder_name, decoder_file = self.decoder_weights() if refiner_name in DECODER_REFINERS else (None, None)
        old = reuse.refiner if reuse is not None and reuse.refiner_name == refiner_name else None
        same_decoder = old is not None and (refiner_name not in DECODER_REFINERS or reuse.decoder_file == decoder_file)
        if refiner_name and refiner_name not in (LITE, HYBRID) and same_decoder:
            out.refiner, out.refiner_name = old, refiner_name
        elif refiner_name:
            try:
                from tnseg_desktop.engine.refiner_choice import make_refiner

                if refiner_name == HYBRID and same_decoder:
                    # its box part (LiteMedSAM, with its embeddings) is kept; its click part is tnseg-lite, whose
                    # active version may have changed, so that part is always made anew
                    from tnseg_desktop.engine.hybrid_refiner import HybridRefiner

                    out.refiner = HybridRefiner(old.box_refiner, make_refiner(LITE, device, lite_weights=lite_weights), name=HYBRID)
                else:
                    out.refiner = make_refiner(refiner_name, device, lite_weights=lite_weights, decoder_weights=decoder_file,
                                               cache=_embedding_cache_of(old))
                out.refiner_name = refiner_name
            except Exception as exc:
                out.problems.append(f"The refiner {refiner_name} could not be loaded ({exc}).")
        if out.refiner is not None and refiner_name in DECODER_REFINERS:
            out.decoder_name, out.decoder_file = decoder_name or "litemedsam-thyroid", decoder_file
        autos = self.auto_names()
        auto_name = auto_name or self.default_auto(autos)
        if auto_name:
            if auto_name == LITE and out.refiner_name == LITE and hasattr(out.refiner, "auto_probs"):
                out.auto, out.auto_name = out.refiner, LITE  # one network serves both roles
            elif auto_name not in (LITE, ENSEMBLE) and reuse is not None and reuse.auto_name == auto_name and reuse.auto is not None:
                out.auto, out.auto_name = reuse.auto, auto_name
            else:
                try:
                    from tnseg_desktop.model.resolve import load_auto_segmenter

                    if auto_name == LITE:
                        out.auto = load_auto_segmenter(self.lite_weights(), device)
                    elif auto_name == ENSEMBLE:  # its tnseg-lite part is the active version too
                        out.auto = load_auto_segmenter(ENSEMBLE, device, lite_weights=self.lite_weights())
                    else:
                        out.auto = load_auto_segmenter(auto_name, device)
                    out.auto_name = auto_name
                except Exception as exc:
                    out.problems.append(f"The model {auto_name} could not be loaded ({exc}).")
        share_embedding(out.auto, out.refiner)
        if out.auto is not None and out.auto_name == ENSEMBLE:
            from tnseg_desktop.engine.sam_polish import box_refiner_of, polished_if_default

            box = box_refiner_of(out.refiner)
            if box is not None:  # outlined by the box tool's LiteMedSAM, on the same cached embedding
                out.auto = polished_if_default(out.auto, ENSEMBLE, device, refiner=box)
        if self.lite_problem is not None and (LITE in (out.auto_name, out.refiner_name) or out.refiner_name == HYBRID
                                              or out.auto_name == ENSEMBLE):
            out.problems.insert(0, self.lite_problem)
            out.version_unusable = True
        if self.decoder_problem is not None and out.decoder_name is not None:
            out.problems.insert(0, self.decoder_problem)
            out.version_unusable = True
        previous = reuse.clip if reuse is not None else None
        if previous is not None and previous is not reuse.auto:
            out.clip = previous  # clip-tnseg, or the tnseg-med loaded for text before
        elif self._status("clip-tnseg") == "installed":
            try:
                from tnseg_desktop.engine.text_prompt import load_clip_predictor

                out.clip = load_clip_predictor(device)
            except Exception as exc:
                log.info("text prompts unavailable: %s", exc)
        if out.clip is None and hasattr(out.auto, "prob_map"):
            out.clip = out.auto  # tnseg-med reads the phrase itself (MiniLM text encoder, known targets)
        elif out.clip is None and "tnseg-med" in autos:
            try:
                from tnseg_desktop.model.resolve import load_tnseg_med_segmenter

                out.clip = load_tnseg_med_segmenter("tnseg-med", device)
            except Exception as exc:
                log.info("text prompts unavailable: %s", exc)
        share_embedding(out.clip, out.refiner)  # also a kept one: the refiner may be another now
        return out


def _embedding_cache_of(refiner: Any) -> Any:
    """The LiteMedSAM embedding cache of a refiner being replaced (its encoder stays, so its embeddings stay valid)."""
    box = getattr(refiner, "box_refiner", refiner)
    return getattr(box, "cache", None) if hasattr(box, "decoder_file") else None


def share_embedding(auto: Any, refiner: Any) -> None:
    """Let tnseg-med use the refiner's cached LiteMedSAM embeddings: one encoder pass per frame serves both.

    Only when the refiner's encoder is the stock one tnseg-med was trained on (same weights and
    precision in the embedding key); otherwise tnseg-med keeps its own encoder.
    """
    if not hasattr(auto, "set_embed"):
        return
    try:
        from tnseg_desktop.engine.litemedsam_refiner import stock_embedding_of

        embed = stock_embedding_of(refiner)
    except Exception as exc:
        log.info("embedding not shared: %s", exc)
        embed = None
    auto.set_embed(embed)


class FixedModels:
    """A provider over models already in memory (tests, benchmarks, scripts)."""

    def __init__(self, auto: Any = None, refiner: Any = None, clip: Any = None,
                 missing: list[MissingModel] | None = None, auto_name: str = LITE, refiner_name: str = LITE,
                 device_text: str = "CPU") -> None:
        self._loaded = LoadedModels(auto, refiner, clip, auto_name if auto is not None else None,
                                    refiner_name if refiner is not None else None, device_text, [])
        self._missing = list(missing or [])

    def missing(self) -> list[MissingModel]:
        return list(self._missing)

    def auto_names(self) -> list[str]:
        return [self._loaded.auto_name] if self._loaded.auto_name else []

    def refiner_names(self) -> list[str]:
        return [self._loaded.refiner_name] if self._loaded.refiner_name else []

    def load(self, auto_name: str | None, refiner_name: str | None, reuse: LoadedModels | None = None) -> LoadedModels:
        return self._loaded
