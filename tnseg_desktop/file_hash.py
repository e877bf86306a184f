"""The one file checksum: hex sha256 read in chunks.

Torch-free on purpose: the GUI checks model versions and the store checks
files before torch is imported.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

CHUNK = 1 << 20


def sha256_of(path: str | Path, progress: Callable[[int, int], None] | None = None) -> str:
    """Hex sha256 of a file, read in chunks; ``progress(done, total)`` after each chunk."""
    path = Path(path)
    total = path.stat().st_size
    digest = hashlib.sha256()
    done = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
    return digest.hexdigest()
