"""Turning exceptions into the one sentence a user sees (never a traceback)."""

from __future__ import annotations

import logging

from tnseg_desktop.errors import UserFacingError

log = logging.getLogger(__name__)


def user_message(exc: BaseException, what: str = "The file could not be opened") -> str:
    """The sentence for a message box: the error's own for user-facing errors."""
    if isinstance(exc, UserFacingError):
        return str(exc)
    # a bug in the app: the details go to the log, the user gets a calm sentence
    log.error("unexpected error", exc_info=(type(exc), exc, exc.__traceback__))
    return f"{what} because of an unexpected problem in tnseg-desktop ({type(exc).__name__})."
