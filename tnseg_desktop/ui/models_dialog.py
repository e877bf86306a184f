"""The Models dialog: every registry model's state and licence; import, download, verify, remove.

Everything that touches files or the network runs on a :class:`BackgroundTask`
thread (hashing a 2.5 GB SAM file takes a while); the dialog only shows
progress and the one-sentence result. Files come in by the file picker or by
dropping them on the dialog, and are installed only when their sha256 matches
the registry (or, for models without a published checksum, when they hold
plain weights).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from tnseg_desktop.errors import UserFacingError
from tnseg_desktop.ui.messages import user_message
from tnseg_desktop.ui.model_tasks import (
    BackgroundTask,
    ModelRow,
    TaskCancelled,
    VersionRow,
    collect_model_rows,
    collect_version_rows,
    describe_size,
    import_model_files,
)
from tnseg_desktop.ui.theme import ACCENT, BORDER, MUTED, TEXT

STATE_COLOURS = {"installed": "#7fbf95", "missing": MUTED, "corrupt": "#e0a458", "active": "#7fbf95"}
WEIGHT_FILTER = "Model weights (*.pt *.pth *.safetensors *.bin *.ckpt);;All files (*)"


# --- the dialog -------------------------------------------------------------------------------------

STYLE = f"""
#ModelsHint {{ color: {MUTED}; }}
#ModelsDetails {{ color: {TEXT}; background: #1a1d21; border: 1px solid {BORDER}; border-radius: 4px; padding: 8px; }}
#ModelsMessage[level="error"] {{ color: #e0a458; }}
#ModelsMessage[level="ok"] {{ color: #7fbf95; }}
#ModelsMessage {{ color: {MUTED}; }}
#ModelsDropHint {{ color: {MUTED}; border: 1px dashed {BORDER}; border-radius: 4px; padding: 6px; }}
#ModelsDialog[dropping="true"] #ModelsDropHint {{ color: {TEXT}; border-color: {ACCENT}; }}
QTreeWidget {{ border: 1px solid {BORDER}; }}
"""

COLUMNS = ("Model", "Status", "Size", "Licence", "File")


class ModelsDialog(QDialog):
    """Lists the registry's models and the retrained versions; imports, downloads, verifies, removes."""

    rows_loaded = Signal()
    task_finished = Signal(bool, str)  # ok, the sentence shown

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ModelsDialog")
        self.setWindowTitle("Models")
        self.setAcceptDrops(True)
        self.setStyleSheet(STYLE)
        self.resize(900, 600)
        self.confirm_remove = True  # tests switch the question off
        self.rows: list[ModelRow] = []
        self.versions: list[VersionRow] = []
        self.task: BackgroundTask | None = None
        self._refresh_tasks: list[BackgroundTask] = []
        self.last_message = ""
        self._build()
        self.refresh()

    # --- construction -----------------------------------------------------------------------------
    def _build(self) -> None:
        hint = QLabel("Model files are checked against the sha256 in the registry before they are installed. "
                      "Nothing is downloaded unless you ask.")
        hint.setObjectName("ModelsHint")
        hint.setWordWrap(True)

        self.tree = QTreeWidget()
        self.tree.setColumnCount(len(COLUMNS))
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setRootIsDecorated(False)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setUniformRowHeights(True)
        for col, width in enumerate((230, 110, 80, 220)):
            self.tree.setColumnWidth(col, width)
        self.tree.currentItemChanged.connect(lambda *_: self._on_selection())

        self.details = QLabel("")
        self.details.setObjectName("ModelsDetails")
        self.details.setWordWrap(True)
        self.details.setTextFormat(Qt.TextFormat.RichText)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.setMinimumHeight(96)

        self.drop_hint = QLabel("Drop a model file here to import it (checked before it is installed)")
        self.drop_hint.setObjectName("ModelsDropHint")
        self.drop_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)

        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.message = QLabel("")
        self.message.setObjectName("ModelsMessage")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.import_button = QPushButton("Import file…")
        self.import_button.clicked.connect(self.choose_file)
        self.download_button = QPushButton("Download")
        self.download_button.clicked.connect(self.download_selected)
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(self.remove_selected)
        self.verify_button = QPushButton("Verify all")
        self.verify_button.clicked.connect(self.verify_all)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_task)
        self.cancel_button.hide()
        close = QPushButton("Close")
        close.clicked.connect(self.accept)

        buttons = QHBoxLayout()
        for b in (self.import_button, self.download_button, self.remove_button, self.verify_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(close)

        lay = QVBoxLayout(self)
        lay.addWidget(hint)
        lay.addWidget(self.tree, 1)
        lay.addWidget(self.details)
        lay.addWidget(self.drop_hint)
        lay.addWidget(self.progress)
        lay.addWidget(self.message)
        lay.addLayout(buttons)
        self._update_buttons()

    # --- listing ----------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Re-read the registry, the user's model folder and the store's versions (on a thread)."""
        task = BackgroundTask(lambda _progress: (collect_model_rows(), collect_version_rows()), "models-list")
        task.succeeded.connect(self._on_rows)
        task.failed.connect(self._on_refresh_failed)
        # keep every listing task alive until its thread is done (one may still run when the next starts)
        self._refresh_tasks = [t for t in self._refresh_tasks if not t.wait(0)] + [task]
        task.start()

    def _on_rows(self, result: tuple[list[ModelRow], list[VersionRow]]) -> None:
        selected = self.selected_name()
        self.rows, self.versions = result
        self.tree.clear()
        groups = (("Models", [r for r in self.rows if r.kind != "user-trained"]),
                  ("Trained on this machine", [r for r in self.rows if r.kind == "user-trained"]))
        for title, rows in groups:
            if not rows and title != "Models":
                continue
            self._add_heading(title)
            for r in rows:
                item = QTreeWidgetItem([r.title if r.title != r.name else r.name, self._status_text(r),
                                        describe_size(r.size), r.licence or "-", r.file])
                item.setData(0, Qt.ItemDataRole.UserRole, ("model", r.name))
                item.setToolTip(0, r.name)
                item.setToolTip(3, r.licence)
                item.setForeground(1, _colour(STATE_COLOURS.get(r.status, TEXT)))
                self.tree.addTopLevelItem(item)
                if r.name == selected:
                    self.tree.setCurrentItem(item)
        if self.versions:
            self._add_heading("Retrained versions (annotation store)")
            for v in self.versions:
                dice = v.metrics.get("dice_mean", v.metrics.get("val_dice"))
                metric = f"val Dice {dice:.3f}" if isinstance(dice, (int, float)) else ""
                item = QTreeWidgetItem([v.name, v.status, "", metric, Path(v.file).name])
                item.setData(0, Qt.ItemDataRole.UserRole, ("version", v.name))
                item.setForeground(1, _colour(STATE_COLOURS.get(v.status, TEXT)))
                self.tree.addTopLevelItem(item)
        if self.tree.currentItem() is None:
            first = next((self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount())
                          if self.tree.topLevelItem(i).data(0, Qt.ItemDataRole.UserRole)), None)
            if first is not None:
                self.tree.setCurrentItem(first)
        self._on_selection()
        self.rows_loaded.emit()

    def _on_refresh_failed(self, exc: BaseException) -> None:
        self._show_message(user_message(exc, "The model list could not be read"), error=True)

    def _add_heading(self, title: str) -> None:
        item = QTreeWidgetItem([title])
        item.setFlags(Qt.ItemFlag.NoItemFlags)
        font = item.font(0)
        font.setBold(True)
        item.setFont(0, font)
        item.setForeground(0, _colour(MUTED))
        item.setFirstColumnSpanned(True)
        self.tree.addTopLevelItem(item)
        item.setFirstColumnSpanned(True)

    @staticmethod
    def _status_text(r: ModelRow) -> str:
        if r.status == "installed" and r.kind == "shipped":
            return "installed (shipped)"
        return r.status

    def row(self, name: str) -> ModelRow | None:
        return next((r for r in self.rows if r.name == name), None)

    def selected_name(self) -> str | None:
        item = self.tree.currentItem() if hasattr(self, "tree") else None
        data = item.data(0, Qt.ItemDataRole.UserRole) if item is not None else None
        return data[1] if data and data[0] == "model" else None

    def select(self, name: str) -> None:
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if item.data(0, Qt.ItemDataRole.UserRole) == ("model", name):
                self.tree.setCurrentItem(item)
                return

    def _on_selection(self) -> None:
        item = self.tree.currentItem()
        data = item.data(0, Qt.ItemDataRole.UserRole) if item is not None else None
        if data and data[0] == "model" and (r := self.row(data[1])) is not None:
            lines = [f"<b>{_esc(r.title)}</b> &nbsp;<span style='color:{MUTED}'>{_esc(r.name)} · {_esc(r.kind)}</span>",
                     f"Licence: {_esc(r.licence or 'not stated')}"]
            lines += [f"{_esc(k)}: <span style='font-family:monospace'>{_esc(v)}</span>" if k == "sha256"
                      else f"{_esc(k)}: {_esc(v)}" for k, v in r.details.items()]
            self.details.setText("<br>".join(lines))
        elif data and data[0] == "version":
            v = next((v for v in self.versions if v.name == data[1]), None)
            if v is not None:
                metrics = ", ".join(f"{k} {val:.3f}" if isinstance(val, float) else f"{k} {val}" for k, val in v.metrics.items())
                self.details.setText("<br>".join([
                    f"<b>{_esc(v.name)}</b> &nbsp;<span style='color:{MUTED}'>retrained version · {_esc(v.status)}</span>",
                    f"Trained from: {_esc(v.parent or 'the shipped model')}", f"Created: {_esc(v.created)}",
                    f"Validation: {_esc(metrics or 'not evaluated')}", f"File: {_esc(v.file)}",
                    "Switch or roll back versions from the retraining panel."]))
        else:
            self.details.setText("")
        self._update_buttons()

    def _update_buttons(self) -> None:
        busy = self.task is not None
        r = self.row(self.selected_name() or "")
        self.import_button.setEnabled(not busy)
        self.verify_button.setEnabled(not busy)
        self.download_button.setEnabled(not busy and r is not None and bool(r.url) and r.status != "installed")
        self.download_button.setToolTip("" if r is None or r.url else "This model has no direct download address; import its file.")
        self.remove_button.setEnabled(not busy and r is not None and r.kind != "shipped" and r.path is not None)
        self.cancel_button.setVisible(busy)

    # --- tasks ------------------------------------------------------------------------------------
    def _start(self, fn: Callable, label: str, outcome: Callable[[Any], tuple[bool, str]]) -> BackgroundTask:
        """Run ``fn`` on a thread; ``outcome(result)`` gives (ok, sentence) for the message line."""
        task = BackgroundTask(fn, "models")
        self.task = task
        self._task_label = label
        self._task_outcome = outcome
        self.progress.setRange(0, 0)  # busy until the first progress report
        self.progress.setFormat(label)
        self.progress.show()
        self._show_message(label + "…")
        # bound methods of this dialog: Qt queues the thread's signals onto the GUI thread
        task.progressed.connect(self._on_task_progress)
        task.succeeded.connect(self._on_task_succeeded)
        task.failed.connect(self._on_task_failed)
        self._update_buttons()
        task.start()
        return task

    def _on_task_progress(self, done: int, total: int | None) -> None:
        label = self._task_label
        if total:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * done / total))
            self.progress.setFormat(f"{label}: {describe_size(done)} of {describe_size(total)} (%p%)")
        else:
            self.progress.setRange(0, 0)
            self.progress.setFormat(f"{label}: {describe_size(done)}")

    def _on_task_succeeded(self, result: Any) -> None:
        self._finish(*self._task_outcome(result))

    def _on_task_failed(self, exc: BaseException) -> None:
        self._finish(False, self._failure_text(exc))

    def _failure_text(self, exc: BaseException) -> str:
        if isinstance(exc, TaskCancelled):
            return "Cancelled. A download continues where it stopped when you press Download again."
        if isinstance(exc, UserFacingError) and exc.path:
            return f"{Path(exc.path).name}: {exc.message}"
        return user_message(exc, "The model file could not be handled")

    def _finish(self, ok: bool, text: str) -> None:
        self.task = None
        self.progress.hide()
        self._show_message(text, error=not ok, success=ok)
        self._update_buttons()
        self.refresh()
        self.task_finished.emit(ok, text)

    def _show_message(self, text: str, error: bool = False, success: bool = False) -> None:
        self.last_message = text
        self.message.setText(text)
        self.message.setProperty("level", "error" if error else "ok" if success else "")
        self.message.style().unpolish(self.message)
        self.message.style().polish(self.message)

    def cancel_task(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self._show_message("Cancelling…")

    # --- actions ----------------------------------------------------------------------------------
    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import a model file", str(Path.home()), WEIGHT_FILTER)
        if path:
            self.import_files([path])

    def import_files(self, paths: list[str]) -> BackgroundTask | None:
        """Verify and install ``paths`` one after another on the task thread."""
        if self.task is not None:
            self._show_message("Wait for the running task to finish (or cancel it) first.", error=True)
            return None
        selected = self.row(self.selected_name() or "")
        by_file = {r.file: r.name for r in self.rows if r.kind == "third-party"}

        def target(path: str) -> str | None:
            # a model without a published checksum cannot be recognised by its hash: import it as the selected entry
            if selected is not None and selected.kind == "third-party" and not selected.sha256:
                return selected.name
            # a file carrying a registry file name is checked against that entry, so a damaged copy is named as such
            return by_file.get(Path(path).name)

        def work(progress):
            return import_model_files(paths, target, progress)

        label = f"Checking and importing {Path(paths[0]).name}" if len(paths) == 1 else f"Importing {len(paths)} files"
        return self._start(work, label, lambda titles: (True, f"Installed {', '.join(titles)}: the checksum matches."))

    def download_selected(self) -> BackgroundTask | None:
        r = self.row(self.selected_name() or "")
        if r is None or self.task is not None:
            return None
        return self.download(r.name)

    def download(self, name: str, url: str | None = None) -> BackgroundTask:
        from tnseg_desktop.model.download import download

        return self._start(lambda progress: download(name, progress=progress, url=url, timeout=20.0),
                           f"Downloading {name}", lambda path: (True, f"Downloaded and verified {name} ({Path(path).name})."))

    def verify_all(self) -> BackgroundTask | None:
        if self.task is not None:
            return None
        from tnseg_desktop.model import registry

        def work(progress):
            return registry.verify(lambda _name, done, total: progress(done, total))

        def outcome(results) -> tuple[bool, str]:
            bad = [r.name for r in results if r.status == registry.CORRUPT]
            if bad:
                return False, f"Damaged: {', '.join(bad)}. Remove and import these files again."
            n = sum(r.status != registry.MISSING for r in results)
            return True, f"All {n} installed model files match their checksums."

        return self._start(work, "Verifying", outcome)

    def remove_selected(self) -> None:
        r = self.row(self.selected_name() or "")
        if r is None or self.task is not None:
            return
        if self.confirm_remove:
            answer = QMessageBox.question(self, "Remove model", f"Delete {r.file} from the model folder?\n{r.path}")
            if answer != QMessageBox.StandardButton.Yes:
                return
        from tnseg_desktop.model import registry
        from tnseg_desktop.store.annotation_store import active_version_refusal

        try:
            registry.remove(r.name, in_use=active_version_refusal)
        except Exception as exc:  # a user-facing sentence, or a file system error
            self._show_message(user_message(exc, "The model file could not be removed"), error=True)
            return
        self._show_message(f"Removed {r.title}.", success=True)
        self.refresh()

    # --- drag and drop ----------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if _local_files(event) and self.task is None:
            self._set_dropping(True)
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragLeaveEvent(self, event) -> None:  # noqa: N802
        self._set_dropping(False)

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        self._set_dropping(False)
        files = _local_files(event)
        if files:
            event.acceptProposedAction()
            self.import_files(files)

    def _set_dropping(self, on: bool) -> None:
        self.setProperty("dropping", "true" if on else "false")
        self.drop_hint.style().unpolish(self.drop_hint)
        self.drop_hint.style().polish(self.drop_hint)

    def done(self, result: int) -> None:  # noqa: D401 (Qt override)
        if self.task is not None:  # a closed dialog must not leave a copy running
            self.task.cancel()
        super().done(result)


def _local_files(event) -> list[str]:
    mime = event.mimeData()
    if not mime.hasUrls():
        return []
    return [u.toLocalFile() for u in mime.urls() if u.isLocalFile() and Path(u.toLocalFile()).is_file()]


def _colour(hex_colour: str):
    from PySide6.QtGui import QBrush, QColor

    return QBrush(QColor(hex_colour))


def _esc(text: object) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
