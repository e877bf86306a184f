"""The text prompt field: suggestions from resources/prompts.txt plus the phrases used before."""

from __future__ import annotations

from PySide6.QtCore import QSettings, QStringListModel, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QCompleter, QHBoxLayout, QLineEdit, QPushButton, QWidget

HISTORY_KEY = "editing/text_prompt_history"
HISTORY_SIZE = 20


def _phrases() -> list[str]:
    from tnseg_desktop.engine.text_prompt import load_phrases

    return load_phrases()


class _PromptEdit(QLineEdit):
    """Enter runs the prompt here instead of reaching the window's Accept shortcut."""

    submitted = Signal()

    def event(self, ev) -> bool:  # noqa: D401
        if ev.type() == ev.Type.ShortcutOverride and isinstance(ev, QKeyEvent) and ev.key() in (
            Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Escape
        ):
            ev.accept()
            return True
        return super().event(ev)

    def keyPressEvent(self, ev: QKeyEvent) -> None:  # noqa: N802
        popup = self.completer().popup() if self.completer() else None
        if ev.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not (popup and popup.isVisible()):
            self.submitted.emit()
            return
        if ev.key() == Qt.Key.Key_Escape:
            self.clearFocus()
            return
        super().keyPressEvent(ev)


class TextPromptField(QWidget):
    """Type a phrase ("solid hypoechoic nodule") and press Enter or Segment."""

    submitted = Signal(str)

    def __init__(self, parent: QWidget | None = None, settings: QSettings | None = None) -> None:
        super().__init__(parent)
        self._settings = settings if settings is not None else QSettings()
        self.edit = _PromptEdit()
        self.edit.setPlaceholderText("Describe the target, e.g. nodule")
        self.edit.setClearButtonEnabled(True)
        self.edit.setToolTip("Text prompt (T): the model finds what the phrase names; Enter runs it")
        self.button = QPushButton("Find")
        self.button.setToolTip("Segment what the phrase names on this frame")
        self.button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self._model = QStringListModel()
        completer = QCompleter(self._model, self)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        completer.setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
        self.edit.setCompleter(completer)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.edit, 1)
        lay.addWidget(self.button)
        self.edit.submitted.connect(self._submit)
        self.button.clicked.connect(self._submit)
        self._history: list[str] = [str(s) for s in (self._settings.value(HISTORY_KEY, []) or []) if str(s).strip()]
        self._refresh()

    def history(self) -> list[str]:
        return list(self._history)

    def suggestions(self) -> list[str]:
        """History first (most recent first), then the built-in phrases."""
        out = list(self._history)
        out += [p for p in _phrases() if p not in out]
        return out

    def _refresh(self) -> None:
        self._model.setStringList(self.suggestions())

    def remember(self, phrase: str) -> None:
        phrase = " ".join(phrase.split())
        if not phrase:
            return
        self._history = [phrase] + [h for h in self._history if h != phrase]
        self._history = self._history[:HISTORY_SIZE]
        self._settings.setValue(HISTORY_KEY, self._history)
        self._refresh()

    def _submit(self) -> None:
        phrase = " ".join(self.edit.text().split())
        if phrase:
            self.remember(phrase)
            self.submitted.emit(phrase)
