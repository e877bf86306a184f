"""Keeping the annotation database safe: the integrity check at open, rotating backups, restoring one.

A store folder that ever held a store keeps a ``STORE`` marker file. A
database that is missing or empty where the marker (or mask files, or
backups) says a store was is reported, never silently recreated: a new empty
database would orphan every mask file and make a new de-identification salt.

After each session that wrote something the database is copied with SQLite's
online backup API into ``backups/`` (the newest :data:`KEEP` that pass
``PRAGMA quick_check`` are kept). Restoring never deletes anything: the
damaged file is moved into ``damaged/`` first.
"""

from __future__ import annotations

import datetime as _dt
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from tnseg_desktop.atomic_write import atomic_write_bytes, replace_durably
from tnseg_desktop.store.errors import StoreError

KEEP = 5
MARKER = "STORE"
BACKUP_DIR = "backups"
DAMAGED_DIR = "damaged"
_SIDE_FILES = ("-wal", "-shm", "-journal")


class StoreDamagedError(StoreError):
    """The database is missing, empty or fails its integrity check."""

    def __init__(self, message: str, path: str | None = None, backup: Path | None = None) -> None:
        super().__init__(message, path)
        self.backup = backup


def _stamp() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")


def write_marker(root: Path) -> None:
    """Record that this folder holds a store (written once, when the database is first made)."""
    marker = root / MARKER
    if not marker.exists():
        atomic_write_bytes(marker, f"tnseg-desktop annotation store, created {_stamp()}\n".encode())


def signs_of_a_store(root: Path) -> list[str]:
    """What in ``root`` shows a store was here (empty when the folder never held one)."""
    signs = []
    if (root / MARKER).is_file():
        signs.append("its STORE marker")
    masks = root / "masks"
    if masks.is_dir() and any(p.suffix == ".png" for p in masks.rglob("*.png")):
        signs.append("mask files")
    if list_backups(root):
        signs.append("backups")
    return signs


def quick_check(conn: sqlite3.Connection) -> str | None:
    """None when ``PRAGMA quick_check`` passes, else its first complaint (or the error it raised)."""
    try:
        rows = conn.execute("PRAGMA quick_check").fetchall()
    except sqlite3.DatabaseError as exc:
        return str(exc)
    first = str(rows[0][0]) if rows else "no answer"
    if first == "ok":
        return None
    text = " ".join(first.replace("*** in database main ***", "").split())
    return text if len(text) <= 120 else text[:117] + "..."


def list_backups(root: Path) -> list[Path]:
    """Backups of the store in ``root``, newest first."""
    folder = root / BACKUP_DIR
    if not folder.is_dir():
        return []
    return sorted(folder.glob("annotations-*.sqlite3"), reverse=True)


def backup_is_good(path: Path) -> bool:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return False
    try:
        if quick_check(conn) is not None:
            return False
        return int(conn.execute("PRAGMA user_version").fetchone()[0]) > 0
    except sqlite3.Error:
        return False
    finally:
        conn.close()


def last_good_backup(root: Path) -> Path | None:
    return next((p for p in list_backups(root) if backup_is_good(p)), None)


def make_backup(conn: sqlite3.Connection, root: Path, keep: int = KEEP) -> Path | None:
    """Copy the open database into ``backups/`` and drop the oldest beyond ``keep``; None when it is not healthy.

    Only a database that passes quick_check is backed up, so a damaged one never pushes the good copies out.
    """
    if quick_check(conn) is not None:
        return None
    folder = root / BACKUP_DIR
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"annotations-{_stamp()}-{os.getpid()}.sqlite3"
    partial = final.with_suffix(".partial")
    dest = sqlite3.connect(str(partial))
    try:
        conn.backup(dest)
        dest.execute("PRAGMA journal_mode = DELETE")
    finally:
        dest.close()
    # a partial file is never listed as a backup: only a complete copy gets the .sqlite3 name
    replace_durably(partial, final)
    for old in list_backups(root)[keep:]:
        old.unlink(missing_ok=True)
    for stale in folder.glob("*.partial"):
        if stale != partial:
            stale.unlink(missing_ok=True)
    return final


@dataclass
class Restored:
    backup: Path
    damaged_kept: list[Path]


def restore_backup(root: Path, db_name: str, backup: Path | None = None) -> Restored:
    """Put a backup in place of a damaged or missing database; the damaged files are moved to ``damaged/``.

    The caller must have checked that the current database is damaged or missing (the CLI and the GUI
    only offer this then): restoring over a healthy store would throw away the work since the backup.
    """
    source = backup or last_good_backup(root)
    if source is None:
        raise StoreError("there is no good backup of the annotation store to restore.", str(root / BACKUP_DIR))
    if not backup_is_good(source):
        raise StoreError("this backup fails its integrity check, so it was not restored.", str(source))
    db = root / db_name
    kept: list[Path] = []
    stamp = _stamp()
    aside = root / DAMAGED_DIR
    for suffix in ("", *_SIDE_FILES):
        p = Path(str(db) + suffix)
        if p.exists():
            aside.mkdir(exist_ok=True)
            target = aside / f"{db.stem}-{stamp}{db.suffix}{suffix}"
            os.replace(p, target)
            kept.append(target)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dest = sqlite3.connect(str(db))
    try:
        src.backup(dest)
    finally:
        dest.close()
        src.close()
    return Restored(source, kept)


def damage_message(problem: str, root: Path, read_only: bool) -> tuple[str, Path | None]:
    """One sentence: what is wrong, what was done, and the last good copy (or that there is none)."""
    backup = last_good_backup(root)
    done = " It was opened read-only: you can look, but nothing is saved." if read_only else " Nothing was changed."
    if backup is not None:
        offer = (f" The last good copy is {backup}; run `tnseg-desktop store restore` to put it back "
                 "(the damaged file is kept in damaged/).")
    else:
        offer = " There is no backup to restore; copy the folder somewhere safe before trying anything else."
    return f"{problem}.{done}{offer}", backup
