"""The recent-files list, kept as JSON in the user's config folder."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from tnseg_desktop.atomic_write import atomic_write_text
from tnseg_desktop.paths import user_config_dir

log = logging.getLogger(__name__)

MAX_RECENT = 10
FILE_NAME = "recent_files.json"


def _store_path() -> Path:
    return user_config_dir() / FILE_NAME


def load_recent() -> list[str]:
    """Recent paths, newest first; a missing or damaged file gives an empty list."""
    try:
        data = json.loads(_store_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(data, list):
        return []
    return [p for p in data if isinstance(p, str)][:MAX_RECENT]


def save_recent(paths: list[str]) -> None:
    target = _store_path()
    try:
        atomic_write_text(target, json.dumps(paths[:MAX_RECENT], indent=1))
    except OSError as exc:  # a read-only config folder must not stop the viewer
        log.warning("could not save the recent-files list: %s", exc)


def add_recent(path: str) -> list[str]:
    """Put ``path`` first in the list, save it, and return the new list."""
    full = os.path.abspath(path)
    paths = [full] + [p for p in load_recent() if p != full]
    save_recent(paths)
    return paths[:MAX_RECENT]


def clear_recent() -> None:
    save_recent([])
