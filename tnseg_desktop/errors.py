"""The one base class for problems a user can cause and understand.

Every layer raises subclasses of :class:`UserFacingError` whose ``str()`` is a
single sentence a clinician understands. The CLI prints it on one line and
exits non-zero; the GUI shows it in a message box. Anything else is a bug.
"""

from __future__ import annotations

import unicodedata


class UserFacingError(Exception):
    """An error caused by input or environment, explained in one sentence."""

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path

    def one_line(self) -> str:
        text = " ".join(self.message.split())
        return printable(f"{self.path}: {text}" if self.path else text)


def printable(text: object) -> str:
    """``text`` safe for one terminal line: control and format characters (a newline, an ANSI escape, a
    bidi override in a file name) are shown as escapes instead of acting on the terminal."""
    out = []
    for ch in str(text):
        if not unicodedata.category(ch).startswith("C"):
            out.append(ch)
        elif ch in "\n\r\t":
            out.append(repr(ch)[1:-1])
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
    return "".join(out)
