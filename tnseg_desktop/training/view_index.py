"""Which accepted frames already have their retraining views on disk, told without reading a pixel.

A view file's name hashes the frame's pixels (training/embedding_views.py), so
finding a frame's views would mean decoding the frame. When the app writes an
accepted frame's views (training/accept_views.py) it also leaves a small note,
named by what the store knows without pixels (the frame's key, the accepted
mask's sha256, the encoder's sha256 and the precision), that lists the files.
The retraining estimate counts a frame's views as cached when its note's files
are all there. Torch-free: planning a run imports no network code.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Sequence

from tnseg_desktop.atomic_write import atomic_write_text

NOTES = "accepted"


def stock_encoder_sha() -> str | None:
    """The sha256 of LiteMedSAM's encoder file (what view files are keyed by), or None when it is not known."""
    try:
        from tnseg_desktop.model import registry

        return registry.entry("litemedsam").sha256 or None
    except Exception:  # no registry entry: no views to count
        return None


def note_path(cache_dir: Path, weights_sha: str, precision: str, frame_key: str, mask_sha256: str) -> Path:
    name = hashlib.sha1(f"{precision}|{frame_key}|{mask_sha256}".encode()).hexdigest()
    return Path(cache_dir) / weights_sha[:16] / NOTES / f"{name}.json"


def write_note(path: Path, view_paths: Sequence[Path]) -> None:
    atomic_write_text(path, json.dumps({"views": [Path(p).name for p in view_paths]}))


def cached_views(cache_dir: Path, weights_sha: str, precision: str, frame_key: str, mask_sha256: str) -> int:
    """How many of the frame's views the note lists that exist (0 without a readable note)."""
    path = note_path(cache_dir, weights_sha, precision, frame_key, mask_sha256)
    try:
        names = json.loads(path.read_text(encoding="utf-8"))["views"]
        return sum(1 for n in names if (path.parent.parent / str(n)).is_file())
    except (OSError, ValueError, KeyError, TypeError):
        return 0
