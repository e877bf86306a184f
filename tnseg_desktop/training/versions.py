"""Which tnseg-lite weights are in use: the store's active model version, switching and rolling back.

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

