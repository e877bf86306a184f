"""The model versions panel: every trained version with its metrics, parent, data and time; switch or roll back.

Listing the versions and switching (which checks the version's weights file
against its sha256) run on a store worker thread, never on the GUI thread.
"""

from __future__ import annotations

import logging
from typing import Callable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QAbstractItemView, QHBoxLayout, QLabel, QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from tnseg_desktop.store import AnnotationStore, ModelVersion
from tnseg_desktop.training import versions
from tnseg_desktop.ui.background import Worker
from tnseg_desktop.ui.messages import user_message

log = logging.getLogger(__name__)

COLUMNS = ("Version", "For", "Status", "Trained", "Parent", "Frames (yours + replay)", "Your held-out Dice", "Base Dice")
ROLE_TEXT = {"auto": "automatic mask", "decoder": "box tool"}  # a decoder version's Dice is box-prompted


def _dice_change(v: ModelVersion, which: str) -> str:
    before = ((v.metrics.get("before") or {}).get(which) or {}).get("dice")
    after = ((v.metrics.get("after") or {}).get(which) or {}).get("dice")
    if after is None:
        return "—"
    return f"{100 * after:.1f}" if before is None else f"{100 * before:.1f} → {100 * after:.1f}"


def version_cells(v: ModelVersion) -> list[str]:
    counts = v.data_counts
    if counts.get("train_user") is not None:
        frames = f"{counts['train_user']} + {counts.get('train_replay', 0)}"
    else:
        frames = "shipped" if counts.get("shipped") else "—"
    return [v.name, ROLE_TEXT.get(v.role, v.role), v.status, v.created_at[:16].replace("T", " "), v.parent_name or "—", frames,
            _dice_change(v, "val_user"), _dice_change(v, "val_base")]


class ModelVersionsPanel(QWidget):
    """Lists the store's model versions; "Use this version" switches (or rolls back) to the selected one."""

    version_activated = Signal(str)

    def __init__(self, store: AnnotationStore | Callable[[], AnnotationStore], parent: QWidget | None = None,
                 worker: Worker | None = None) -> None:
        super().__init__(parent)
        self._store_source = store
        self.worker = worker if worker is not None else Worker("versions-store", self)
        self.versions: list[ModelVersion] = []
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.use_button = QPushButton("Use this version")
        self.use_button.clicked.connect(self.activate_selected)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        buttons = QHBoxLayout()
        buttons.addWidget(self.use_button)
        buttons.addWidget(self.refresh_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.message)
        self.refresh()

    @property
    def store(self) -> AnnotationStore:
        return self._store_source if isinstance(self._store_source, AnnotationStore) else self._store_source()

    def refresh(self) -> None:
        """List the versions again (on the store worker)."""
        def failed(exc: BaseException) -> None:
            self.message.setText(user_message(exc, "The model versions could not be listed"))
            self._show([])

        self.worker.submit(lambda job: self.store.list_model_versions(), self._show, failed, name="list model versions")

    def _show(self, listed: list[ModelVersion]) -> None:
        self.versions = list(reversed(listed))  # newest first
        self.table.setRowCount(len(self.versions))
        for r, v in enumerate(self.versions):
            for c, text in enumerate(version_cells(v)):
                item = QTableWidgetItem(text)
                if v.status == "active":
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                gate = (v.metrics.get("gate") or {}).get("reason")
                if gate:
                    item.setToolTip(gate)
                self.table.setItem(r, c, item)
        self.table.resizeColumnsToContents()
        if not self.versions:
            self.message.setText("No model has been retrained yet; the shipped tnseg-lite is in use.")
        self._update_buttons()

    def selected(self) -> ModelVersion | None:
        rows = self.table.selectionModel().selectedRows()
        return self.versions[rows[0].row()] if rows else None

    def select(self, name: str) -> None:
        for r, v in enumerate(self.versions):
            if v.name == name:
                self.table.selectRow(r)
                return

    def _update_buttons(self) -> None:
        v = self.selected()
        self.use_button.setEnabled(v is not None and v.status != "active")

    def activate_selected(self) -> bool:
        v = self.selected()
        if v is None:
            return False
        return self.activate(v.name)

    def activate(self, name: str) -> bool:
        """Make ``name`` the model in use, on the store worker; ``version_activated`` follows, and the window
        then reloads the editing session's models."""
        def switch(job) -> list[ModelVersion]:
            versions.switch_to(self.store, name)
            return self.store.list_model_versions()

        def switched(listed: list[ModelVersion]) -> None:
            self._show(listed)
            self.message.setText(f"{name} is now the model in use.")
            self.select(name)
            self.version_activated.emit(name)

        def failed(exc: BaseException) -> None:
            self.message.setText(user_message(exc, "The version could not be switched to"))
            self._update_buttons()

        self.use_button.setEnabled(False)
        self.worker.submit(switch, switched, failed, name="switch model version")
        return True
