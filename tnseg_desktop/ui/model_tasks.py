"""The Models dialog's work off the GUI thread: the rows it lists, importing files, and the task thread itself.

Only :class:`BackgroundTask` touches Qt (its signals); the rest runs on the task thread.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QObject, Signal

log = logging.getLogger(__name__)


class TaskCancelled(Exception):
    """Raised inside a task's progress callback once the user pressed Cancel."""


# --- what the dialog lists (no Qt: runs on the task thread) ------------------------------------


@dataclass
class ModelRow:
    name: str
    title: str
    kind: str  # "shipped", "third-party" or "user-trained"
    status: str  # installed / missing / corrupt
    size: int | None
    licence: str
    file: str
    path: str | None
    url: str | None
    sha256: str | None
    details: dict[str, str] = field(default_factory=dict)


@dataclass
class VersionRow:
    """A model version recorded by retraining in the annotation store."""

    name: str
    status: str
    parent: str | None
    created: str
    file: str
    metrics: dict[str, Any]


def collect_model_rows() -> list[ModelRow]:
    """Every registry entry and user-trained file, with its state (size check; ``Verify`` hashes)."""
    from tnseg_desktop.model import registry

    rows = []
    for name, e in registry.load_registry().items():
        path = registry.find_path(name)
        try:
            state = registry.status(name)
        except registry.RegistryError as exc:
            log.warning("status of %s: %s", name, exc)
            state = registry.CORRUPT
        details = {
            "Architecture": e.architecture,
            "Source": e.source,
            "Download address": e.url or "none: bring the file and import it",
            "sha256": e.sha256 or "not published: the file is checked to hold only weights",
            "Needs": ", ".join(e.needs) or "nothing else",
            "Installed at": str(path) if path else "not installed",
        }
        if e.note:
            details["Note"] = e.note
        size = path.stat().st_size if path is not None else e.size
        rows.append(ModelRow(name, e.title, e.kind, state, size, e.licence, e.file,
                             str(path) if path else None, e.url, e.sha256, details))
    return rows


def collect_version_rows() -> list[VersionRow]:
    """The retrained versions the annotation store knows (empty when nothing was retrained yet)."""
    from tnseg_desktop.store import AnnotationStore

    try:
        with AnnotationStore() as store:
            versions = store.list_model_versions()
    except Exception as exc:  # a locked or damaged store must not hide the model list
        log.warning("could not list model versions: %s", exc)
        return []
    return [VersionRow(v.name, v.status, v.parent_name, v.created_at, v.file, dict(v.metrics)) for v in versions]


def describe_size(size: int | None) -> str:
    from tnseg_desktop.model.registry import describe_size as _describe

    return _describe(size)


def import_model_files(paths: list[str], target: Callable[[str], str | None],
                       progress: Callable[[int, int | None], None]) -> list[str]:
    """Verify and install ``paths`` one after another (``target(path)``: the registry entry to check it against,
    None to recognise it by its sha256); returns the installed models' titles."""
    from tnseg_desktop.model import registry

    titles = []
    for p in paths:
        try:
            titles.append(registry.import_file(p, name=target(p), progress=progress)[0].title)
        except registry.ImportRefused as exc:
            if "--name" not in exc.message:
                raise
            raise registry.ImportRefused(
                f"{Path(p).name} matches no model in the registry (its sha256 is not a known one), so it was not "
                "installed; for a model without a published checksum, select it in the list first.", None) from None
    return titles


# --- running work off the GUI thread ------------------------------------------------------------


class BackgroundTask(QObject):
    """Runs ``fn(progress)`` on a thread; progress, result and error come back as queued signals.

    ``progress(done, total)`` raises :class:`TaskCancelled` after :meth:`cancel`,
    which stops a copy or download between chunks.
    """

    progressed = Signal(object, object)  # done, total (None when unknown)
    succeeded = Signal(object)
    failed = Signal(object)
    finished = Signal()

    def __init__(self, fn: Callable[[Callable[[int, int | None], None]], Any], name: str = "task") -> None:
        super().__init__()
        self._fn = fn
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"tnseg-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _progress(self, done: int, total: int | None) -> None:
        if self._cancel.is_set():
            raise TaskCancelled()
        self.progressed.emit(done, total)

    def _run(self) -> None:
        try:
            result = self._fn(self._progress)
        except BaseException as exc:  # reported to the user by the dialog
            self.failed.emit(exc)
        else:
            self.succeeded.emit(result)
        self.finished.emit()
