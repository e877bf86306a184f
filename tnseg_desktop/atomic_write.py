"""The one atomic file writer (DESIGN.md section 1).

A reader of the target path sees either the old file or the whole new one,
also after a crash or power loss: the new content goes to a temporary file in
the same folder, is flushed to disk (fsync), renamed over the target
(``os.replace``, atomic on one file system), and the folder itself is fsynced
so that the rename survives. A failure deletes the temporary file and leaves
the target as it was.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

TEMP_SUFFIX = ".tmp"


def fsync_dir(directory: str | Path) -> None:
    """Make a rename or a new file in ``directory`` durable."""
    if os.name == "nt":  # directories cannot be opened for fsync on Windows; NTFS journals the rename
        return
    fd = os.open(str(directory), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: str | Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _temp_in(folder: Path, name: str) -> Path:
    # hidden and named after its target, so a leftover from a killed process says what it was
    fd, tmp = tempfile.mkstemp(dir=str(folder), prefix=f".{name}.", suffix=TEMP_SUFFIX)
    os.close(fd)
    return Path(tmp)


def replace_durably(src: str | Path, target: str | Path) -> Path:
    """Rename a complete file (already written and fsynced in the target's folder) over ``target``, durably."""
    target = Path(target)
    os.replace(src, target)
    fsync_dir(target.parent)
    return target


@contextmanager
def atomic_path(target: str | Path, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; write the whole file there and it replaces ``target`` on exit.

    For writers that take a file name (safetensors, pydicom, shutil). ``mode`` sets the file's
    permissions (the temporary file starts as 0600, readable by its owner only).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_in(target.parent, target.name)
    try:
        yield tmp
        if mode is not None:
            os.chmod(tmp, mode)
        fsync_file(tmp)
        replace_durably(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | Path, data: bytes, mode: int | None = None) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path``."""
    path = Path(path)
    with atomic_path(path, mode) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
    return path


def atomic_write_text(path: str | Path, text: str, mode: int | None = None) -> Path:
    """Write ``text`` as UTF-8 to ``path`` atomically; returns ``path``."""
    return atomic_write_bytes(path, text.encode("utf-8"), mode)
