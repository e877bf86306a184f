"""A banner above the image when the annotation store cannot be used: what is wrong, and the last good copy."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

STYLE = """
#StoreProblemBanner { background: #3a1f1f; border-bottom: 1px solid #7a3434; }
#StoreProblemBanner QLabel { color: #f2c7c7; }
"""


class StoreProblemBanner(QWidget):
    """Stays until the store is usable again; viewing goes on underneath."""

    restore_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("StoreProblemBanner")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.setStyleSheet(STYLE)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.restore_button = QPushButton("Restore Last Good Copy")
        self.restore_button.setToolTip("Put the newest good backup in place; the damaged file is kept in damaged/")
        self.restore_button.clicked.connect(self.restore_requested)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(12, 6, 6, 6)
        lay.addWidget(self.label, 1)
        lay.addWidget(self.restore_button, 0, Qt.AlignmentFlag.AlignTop)
        self.hide()

    def show_problem(self, problem: str, backup: Path | None) -> None:
        self.label.setText("Annotation store: " + " ".join(problem.split())
                           + " Viewing, playback and measuring still work; edits are not saved.")
        self.restore_button.setVisible(backup is not None)
        self.show()

    def clear(self) -> None:
        self.label.setText("")
        self.hide()
