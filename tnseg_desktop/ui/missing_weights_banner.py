"""A banner above the image when model weights are missing: what is missing, and how to add it."""

from __future__ import annotations

from typing import Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QToolButton, QWidget

from tnseg_desktop.ui.model_provider import IMPORT_HINT, MissingModel

STYLE = """
#MissingWeightsBanner { background: #2f2a1e; border-bottom: 1px solid #5c4a24; }
#MissingWeightsBanner QLabel { color: #e9d8a6; }
#MissingWeightsBanner QLabel#BannerCommand { color: #ffe6a3; font-family: monospace; }
"""


def banner_text(missing: Sequence[MissingModel]) -> str:
    parts = [f"<b>{m.name}</b> ({m.purpose})" for m in missing]
    return ("Model weights missing: " + "; ".join(parts) + ". Viewing, painting, measuring and export still work. "
            f"Add a model file with <span style='font-family:monospace'>{IMPORT_HINT}</span>.")


class MissingWeightsBanner(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("MissingWeightsBanner")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.setStyleSheet(STYLE)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.RichText)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.close_button = QToolButton()
        self.close_button.setText("✕")
        self.close_button.setToolTip("Hide this message")
        self.close_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.close_button.clicked.connect(self.hide)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(12, 6, 6, 6)
        lay.addWidget(self.label, 1)
        lay.addWidget(self.close_button, 0, Qt.AlignmentFlag.AlignTop)
        self.missing: list[MissingModel] = []
        self.hide()

    def set_missing(self, missing: Sequence[MissingModel]) -> None:
        self.missing = list(missing)
        self.label.setText(banner_text(self.missing))
        self.setVisible(bool(self.missing))
