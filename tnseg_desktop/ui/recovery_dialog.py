"""Offering to restore the drafts a crashed session left behind."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget

from tnseg_desktop.store import RecoveryInfo


def recovery_box(info: RecoveryInfo, parent: QWidget | None = None) -> QMessageBox:
    """A question box: Restore (the default) or Discard. Not shown yet."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Question)
    box.setWindowTitle("Restore unsaved work?")
    box.setText(info.message)
    studies = ", ".join(sorted({s.source_path.replace("\\", "/").rsplit("/", 1)[-1] for s in info.studies}))
    box.setInformativeText(
        (f"Drafts belong to: {studies}.\n" if studies else "")
        + "Restore keeps them; they come back on their frames when the cine is opened.")
    restore = box.addButton("Restore", QMessageBox.ButtonRole.AcceptRole)
    box.addButton("Discard", QMessageBox.ButtonRole.DestructiveRole)
    box.setDefaultButton(restore)
    box.restore_button = restore  # type: ignore[attr-defined]
    return box


def ask_restore(info: RecoveryInfo, parent: QWidget | None = None) -> bool:
    box = recovery_box(info, parent)
    box.exec()
    return box.clickedButton() is box.restore_button  # type: ignore[attr-defined]
