"""The one base class for problems a user can cause and understand.

Every layer raises subclasses of :class:`UserFacingError` whose ``str()`` is a
single sentence a clinician understands. The CLI prints it on one line and
exits non-zero; the GUI shows it in a message box. Anything else is a bug.
"""

from __future__ import annotations


class UserFacingError(Exception):
    """An error caused by input or environment, explained in one sentence."""

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path

    def one_line(self) -> str:
        text = " ".join(self.message.split())
        return f"{self.path}: {text}" if self.path else text
