"""What the editing controller's parts share: where they report, and the open cine's session.

The controller owns one :class:`Reporter` and one :class:`OpenSession` and hands them to its parts (model
jobs, store persistence), so that the state they share is explicit instead of living on one ``self``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from tnseg_desktop.engine.session import EditingSession
from tnseg_desktop.engine.view_regions import Views
from tnseg_desktop.ui.messages import user_message

if TYPE_CHECKING:
    from tnseg_desktop.ui.main_window import MainWindow


class Reporter:
    """Sentences for the user: the window's status bar and the controller's ``message`` signal (``emit``);
    keeps the last error a job raised."""

    def __init__(self, window: MainWindow, emit: Callable[[str], None]) -> None:
        self.window: MainWindow = window
        self.emit: Callable[[str], None] = emit
        self.last_error: BaseException | None = None

    def say(self, text: str) -> None:
        self.window.statusBar().showMessage(text, 8000)
        self.emit(text)

    def failed(self, exc: BaseException) -> None:
        """A background job's failure, said in one sentence."""
        self.last_error = exc
        self.say(user_message(exc, "The operation failed"))


class OpenSession:
    """The cine being edited: its session (None while no cine is open), its ultrasound image regions, and
    the frame on screen that edits go to."""

    def __init__(self, window: MainWindow, report: Reporter) -> None:
        self.window: MainWindow = window
        self.report: Reporter = report
        self.session: EditingSession | None = None
        self.views: Views = Views((0, 0), ())  # the open cine's ultrasound image regions (none: the whole frame)

    def frame_to_edit(self) -> int | None:
        """The frame edits go to: the one on screen (None, said to the user, when there is none yet)."""
        index = self.window.displayed_index
        if self.session is None or index < 0:
            self.report.say("Open a cine and wait for its first frame before editing.")
            return None
        return index

    def spacing(self) -> tuple[float, float] | None:
        """The open cine's pixel spacing in mm (rows, columns), when it has one."""
        meta = self.window.meta
        return tuple(meta.pixel_spacing_mm) if meta is not None and meta.pixel_spacing_mm else None  # type: ignore[return-value]
