"""Where the app keeps its files: the one place that decides folders.

``TNSEG_DATA_DIR`` and ``TNSEG_CONFIG_DIR`` override the platform defaults
(tests and portable installs use them).
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP = "tnseg-desktop"
REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIR = Path(__file__).resolve().parent


def user_data_dir() -> Path:
    p = Path(os.environ.get("TNSEG_DATA_DIR") or platformdirs.user_data_dir(APP, appauthor=False))
    p.mkdir(parents=True, exist_ok=True)
    return p


def user_config_dir() -> Path:
    p = Path(os.environ.get("TNSEG_CONFIG_DIR") or platformdirs.user_config_dir(APP, appauthor=False))
    p.mkdir(parents=True, exist_ok=True)
    return p


def user_models_dir() -> Path:
    p = user_data_dir() / "models"
    p.mkdir(parents=True, exist_ok=True)
    return p


VIEW_CACHE_ENV = "TNSEG_VIEW_CACHE"


def view_cache_dir() -> Path:
    """Embeddings of training views (LiteMedSAM encoder outputs), kept between retraining runs: $TNSEG_VIEW_CACHE
    or view_cache/ in the data folder."""
    env = os.environ.get(VIEW_CACHE_ENV)
    return Path(env) if env else user_data_dir() / "view_cache"


def store_dir() -> Path:
    p = user_data_dir() / "store"
    p.mkdir(parents=True, exist_ok=True)
    return p


def shipped_models_dir() -> Path:
    """The project's own weights and registry.json (models/ in a source checkout or bundle)."""
    env = os.environ.get("TNSEG_SHIPPED_MODELS")
    if env:
        return Path(env)
    for candidate in (REPO_ROOT / "models", PACKAGE_DIR / "_bundled_models"):
        if (candidate / "registry.json").is_file():
            return candidate
    return REPO_ROOT / "models"


def resources_dir() -> Path:
    for candidate in (REPO_ROOT / "resources", PACKAGE_DIR / "_bundled_resources"):
        if candidate.is_dir():
            return candidate
    return REPO_ROOT / "resources"
