"""Which weights are in use for each role (tnseg-lite for the automatic mask, LiteMedSAM's decoder for boxes
and clicks): the store's active model versions, switching and rolling back.

The store keeps every version (name, file, sha256, parent, metrics, data
counts, time, status). Before any version is trained the shipped tnseg-lite
is the active model; it is recorded as the first version when the first
retraining starts, so that versions have a parent to roll back to.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tnseg_desktop.errors import UserFacingError
from tnseg_desktop.file_hash import sha256_of
from tnseg_desktop.paths import shipped_models_dir
from tnseg_desktop.store import AnnotationStore, ModelVersion

if TYPE_CHECKING:
    import torch

SHIPPED_NAME = "tnseg-lite"


class VersionError(UserFacingError):
    """A model version that cannot be used."""


def shipped_weights(name: str = SHIPPED_NAME) -> Path:
    """The shipped tnseg-lite file, found and checked by the weights registry (a file failing its check is refused)."""
    from tnseg_desktop.model import registry

    try:
        return registry.path_for(name)
    except registry.ModelNotInstalled:
        raise VersionError(f"the shipped model {name} is not installed; reinstall the application.", str(shipped_models_dir())) from None


def ensure_base_version(store: AnnotationStore, name: str = SHIPPED_NAME, weights: str | Path | None = None) -> ModelVersion:
    """The active version; records the shipped (or given) weights as the first, active one when there is none."""
    active = store.active_model_version()
    if active is not None:
        return active
    if any(v.name == name for v in store.list_model_versions()):
        return switch_to(store, name)
    path = Path(weights) if weights is not None else shipped_weights(name)
    if not path.is_file():
        raise VersionError("the base model's weights file is missing.", str(path))
    return store.record_model_version(name, file=str(path), sha256=sha256_of(path), parent=None, metrics={},
                                      data_counts={"shipped": weights is None}, last_edit_id=0, status="active")


def weights_of(version: ModelVersion) -> Path:
    """The version's weights file, checked against the sha256 recorded when it was made."""
    path = Path(version.file)
    if not path.is_file():
        raise VersionError(f"the weights of model version '{version.name}' are missing.", str(path))
    shipped = bool(version.data_counts.get("shipped"))
    # an application update may replace the shipped file (it is checked against the registry instead);
    # a trained version's file must never change
    if shipped:
        from tnseg_desktop.model import registry

        known = registry.known_entries().get(version.name)
        if known is not None:
            registry.check_file(known, path)
    elif version.sha256 and sha256_of(path) != version.sha256:
        raise VersionError(f"the weights of model version '{version.name}' have changed or are damaged.", str(path))
    return path


def switch_to(store: AnnotationStore, name: str) -> ModelVersion:
    """Make ``name`` the active version (promotion or roll-back) once its file checks out."""
    weights_of(store.model_version(name))
    return store.set_active_version(name)


def active_weights(store: AnnotationStore) -> tuple[str, Path]:
    """(name, weights file) of the model in use: the active version, else the shipped tnseg-lite."""
    active = store.active_model_version()
    if active is None:
        return SHIPPED_NAME, shipped_weights()
    return active.name, weights_of(active)


def load_version(store: AnnotationStore, name: str, device: torch.device | str = "cpu") -> Any:
    from tnseg_desktop.model.lite_weights import load_lite

    return load_lite(weights_of(store.model_version(name)), device)



# --- the decoder role: LiteMedSAM's prompt encoder + mask decoder (boxes and clicks) -------------------

DECODER_SHIPPED = "litemedsam-thyroid"


def shipped_decoder() -> Path | None:
    """The shipped litemedsam-thyroid decoder file, or None when it (or LiteMedSAM itself) is not installed."""
    from tnseg_desktop.model import registry

    try:
        registry.path_for("litemedsam")
        return registry.path_for(DECODER_SHIPPED)
    except registry.RegistryError:
        return None


def active_decoder(store: AnnotationStore | None) -> tuple[str, Path] | None:
    """(name, checked file) of the decoder in use: the store's active decoder version, else the shipped one.

    A decoder version whose file fails its check raises (the caller says so; it is never silently replaced).
    """
    active = store.active_model_version("decoder") if store is not None else None
    if active is not None:
        return active.name, weights_of(active)
    path = shipped_decoder()
    return (DECODER_SHIPPED, path) if path is not None else None


def ensure_base_decoder_version(store: AnnotationStore) -> ModelVersion | None:
    """The active decoder version; the shipped one is recorded as the first when there is none (None: not installed)."""
    active = store.active_model_version("decoder")
    if active is not None:
        return active
    if any(v.name == DECODER_SHIPPED for v in store.list_model_versions("decoder")):
        return switch_to(store, DECODER_SHIPPED)
    path = shipped_decoder()
    if path is None:
        return None
    return store.record_model_version(DECODER_SHIPPED, file=str(path), sha256=sha256_of(path), parent=None, metrics={},
                                      data_counts={"shipped": True}, last_edit_id=0, status="active", role="decoder")
