"""Leftovers of killed processes, removed at start once nothing can still refer to them.

A process killed while it writes leaves temporary files (the atomic writer's ``.<name>.*.tmp``, the
embedding caches' ``.tmp-*.part`` and ``*.<pid>.tmp``) and, between a mask file's write and the row
that names it, an unreferenced mask PNG. A file younger than ``min_age_s`` is kept: another window or
the retraining worker may be about to commit or rename it. The models folder is left alone while a
training run is alive (its worker writes there).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from tnseg_desktop.atomic_write import TEMP_SUFFIX

log = logging.getLogger(__name__)

MIN_AGE_S = 600.0  # far longer than any single file write or commit takes


@dataclass
class Cleanup:
    """What was removed (paths) and what was kept because it may still be in use."""

    temp_files: list[Path] = field(default_factory=list)
    orphan_masks: list[Path] = field(default_factory=list)
    kept_recent: int = 0
    failed: list[str] = field(default_factory=list)

    @property
    def removed(self) -> int:
        return len(self.temp_files) + len(self.orphan_masks)

    def summary(self) -> str:
        text = (f"Removed {len(self.temp_files)} temporary file(s) and {len(self.orphan_masks)} unreferenced "
                f"mask file(s) left by an interrupted run")
        if self.kept_recent:
            text += f"; kept {self.kept_recent} recent one(s) that may still be in use"
        if self.failed:
            text += f"; {len(self.failed)} could not be removed"
        return text + "."


def is_temp_file(path: Path) -> bool:
    name = path.name
    return name.endswith(TEMP_SUFFIX) or (name.startswith(".tmp-") and name.endswith(".part"))


def _old_enough(path: Path, now: float, min_age_s: float) -> bool:
    try:
        return now - path.stat().st_mtime >= min_age_s
    except OSError:  # gone meanwhile
        return False


def _remove(path: Path, into: list[Path], report: Cleanup) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        return
    except OSError as exc:
        report.failed.append(f"{path}: {exc.strerror or exc}")
        return
    into.append(path)


def remove_leftovers(store, models_dir: Path | None = None, *, min_age_s: float = MIN_AGE_S) -> Cleanup:
    """Delete stale temporary files in the store (and ``models_dir``) and mask files no row names.

    ``store`` is an open, writable :class:`~tnseg_desktop.store.AnnotationStore`; a read-only (damaged)
    store is left untouched, since what it refers to cannot be known.
    """
    report = Cleanup()
    if store.read_only:
        return report
    now = time.time()
    folders = [store.root]
    if models_dir is not None and store.running_training_run() is None:
        folders.append(Path(models_dir))
    for folder in folders:
        if not folder.is_dir():
            continue
        for p in folder.rglob("*"):
            if p.is_file() and is_temp_file(p):
                if _old_enough(p, now, min_age_s):
                    _remove(p, report.temp_files, report)
                else:
                    report.kept_recent += 1
    for p in store.files.unreferenced(store.referenced_files()):
        if is_temp_file(p) or not p.exists():
            continue  # handled above
        if _old_enough(p, now, min_age_s):
            _remove(p, report.orphan_masks, report)
        else:
            report.kept_recent += 1
    if report.removed or report.failed:
        log.info("%s", report.summary())
    return report
