"""The shortcuts sheet (F1): every key of the editing workflow on one page."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QGridLayout, QLabel, QVBoxLayout, QWidget

SHORTCUTS: list[tuple[str, list[tuple[str, str]]]] = [
    ("Tools", [
        ("C", "Click tool: left click adds, right click or Shift+click removes"),
        ("X", "Box tool: drag a box around the nodule; right click removes it"),
        ("B", "Brush"),
        ("E", "Eraser"),
        ("[  /  ]", "Smaller / larger brush (also Ctrl+wheel)"),
        ("V", "View only: drag pans, wheel zooms"),
        ("T", "Type a text prompt"),
    ]),
    ("Mask", [
        ("H", "Fill holes"),
        ("Shift+K", "Keep the largest part"),
        ("Delete", "Clear the mask (no nodule on this frame)"),
        ("Ctrl+Z", "Undo"),
        ("Ctrl+Shift+Z  /  Ctrl+Y", "Redo"),
        ("Enter", "Accept this frame (saved at once)"),
        ("O  /  L", "Show or hide the mask fill / outline"),
        ("M", "Show or hide the diameter lines"),
    ]),
    ("Model", [
        ("S", "Segment this frame"),
        ("Shift+S", "Segment all frames"),
        ("Shift+Left  /  Shift+Right", "Propagate the mask backward / forward"),
        ("Esc", "Cancel the running job"),
    ]),
    ("Frames", [
        ("Left  /  Right", "Previous / next frame"),
        ("Space", "Play / pause"),
        ("Home  /  End", "First / last frame"),
        ("F", "Fit to window"),
        ("F1", "This sheet"),
    ]),
]


class ShortcutsSheet(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        grid = QGridLayout()
        grid.setHorizontalSpacing(18)
        grid.setVerticalSpacing(4)
        row = 0
        for col_group, groups in enumerate((SHORTCUTS[:2], SHORTCUTS[2:])):
            r = 0
            for title, items in groups:
                head = QLabel(title)
                head.setStyleSheet("font-weight: 600; color: #8b949e; padding-top: 8px;")
                grid.addWidget(head, r, 2 * col_group, 1, 2)
                r += 1
                for keys, what in items:
                    k = QLabel(keys)
                    k.setStyleSheet("font-family: monospace; color: #d9dee4;")
                    k.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                    grid.addWidget(k, r, 2 * col_group)
                    w = QLabel(what)
                    grid.addWidget(w, r, 2 * col_group + 1)
                    r += 1
            row = max(row, r)
        grid.setRowStretch(row, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(grid)
        lay.addWidget(buttons)
