"""Mixed into :class:`~tnseg_desktop.ui.editing_controller.EditingController`: the commands its tools
(:class:`~tnseg_desktop.ui.tools.ToolTarget`) and actions (:class:`~tnseg_desktop.ui.editing_actions.ActionTarget`)
call. Each edits the open session on the GUI thread or hands the work to the part that owns it: model work to
:class:`ModelJobs`, the store to :class:`StorePersistence`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from PySide6.QtCore import Qt

from tnseg_desktop.engine.session import EditingSession
from tnseg_desktop.ui.background import Job
from tnseg_desktop.ui.shortcuts_sheet import ShortcutsSheet

if TYPE_CHECKING:
    from tnseg_desktop.ui.canvas import CineCanvas
    from tnseg_desktop.ui.editing_actions import EditingActions
    from tnseg_desktop.ui.editing_jobs import ModelJobs
    from tnseg_desktop.ui.editing_persistence import StorePersistence
    from tnseg_desktop.ui.editing_state import OpenSession, Reporter
    from tnseg_desktop.ui.main_window import MainWindow
    from tnseg_desktop.ui.measurement_overlay import MeasurementLines
    from tnseg_desktop.ui.prompt_markers import PromptMarkers
    from tnseg_desktop.ui.text_prompt_field import TextPromptField
    from tnseg_desktop.ui.tools import BrushCursor


class EditingCommands:
    window: MainWindow
    canvas: CineCanvas
    current: OpenSession
    report: Reporter
    jobs: ModelJobs
    persistence: StorePersistence
    actions: EditingActions
    tools: dict[str, Any]
    tool_name: str
    markers: PromptMarkers
    lines: MeasurementLines
    brush_cursor: BrushCursor
    text_field: TextPromptField
    _refresh_now: Callable[[], None]

    # --- tools (ToolTarget) ------------------------------------------------------------------
    def set_tool(self, name: str) -> None:
        tool = self.tools[name]
        self.tool_name = name
        self.actions.tool_actions[name].setChecked(True)
        self.canvas.set_tool(tool)
        self.brush_cursor.set_enabled(name in ("brush", "eraser"), erase=name == "eraser")
        cursor = getattr(tool, "cursor", Qt.CursorShape.ArrowCursor)
        self.canvas.viewport().setCursor(cursor)

    def tool_click(self, row: int, col: int, positive: bool) -> None:
        index = self.current.frame_to_edit()
        if index is None:
            return
        if self.jobs.models.refiner is None:
            self.report.say("Clicks need a refiner model (none is installed); use the brush and eraser instead.")
            return
        # show the marker at once; the mask follows when the refiner answers
        shown = self.markers.points + [(row, col, positive)]
        session = self.current.session
        box = session.prompts(index).box if session is not None else None
        self.markers.set_prompts(shown, box)
        self.jobs.model_job("click", lambda s, i: s.add_click(i, row, col, positive))

    def tool_box(self, box: tuple[int, int, int, int] | None) -> None:
        if box is not None and self.jobs.models.refiner is None:
            self.report.say("Boxes need a refiner model (none is installed); use the brush and eraser instead.")
            return
        self.jobs.model_job("box", lambda s, i: s.set_box(i, box))

    def tool_paint(self, points: list[tuple[int, int]], radius: int, erase: bool, stroke: str) -> None:
        index = self.current.frame_to_edit()
        session = self.current.session
        if index is None or session is None:
            return
        if erase:
            session.erase_stroke(index, points, radius, group=("stroke", stroke))
        else:
            session.paint_stroke(index, points, radius, group=("stroke", stroke))

    # --- commands (ActionTarget) -----------------------------------------------------------------
    def focus_text(self) -> None:
        self.text_field.edit.setFocus()
        self.text_field.edit.selectAll()

    def apply_text(self, phrase: str) -> Job | None:
        self.canvas.setFocus()
        return self.jobs.model_job("text", lambda s, i: s.apply_text(i, phrase))

    def _light(self, fn: Callable[[EditingSession, int], Any]) -> None:
        index = self.current.frame_to_edit()
        session = self.current.session
        if index is not None and session is not None:
            fn(session, index)

    def fill_holes(self) -> None:
        self._light(lambda s, i: s.fill_holes(i))

    def keep_largest(self) -> None:
        self._light(lambda s, i: s.keep_largest_component(i))

    def clear(self) -> None:
        self._light(lambda s, i: s.clear(i))

    def undo(self) -> None:
        session = self.current.session
        if session is not None and not session.undo():
            self.report.say("Nothing to undo.")

    def redo(self) -> None:
        session = self.current.session
        if session is not None and not session.redo():
            self.report.say("Nothing to redo.")

    def load_models(self, auto: str | None = None, refiner: str | None = None) -> Job:
        """Load (or switch) models in the background (see :meth:`ModelJobs.load_models`)."""
        return self.jobs.load_models(auto, refiner)

    def segment_frame(self) -> Job | None:
        return self.jobs.segment_frame()

    def segment_all(self) -> Job | None:
        return self.jobs.segment_all()

    def propagate(self, direction: int) -> Job | None:
        return self.jobs.propagate(direction)

    def cancel_job(self) -> None:
        self.jobs.cancel_job()

    def accept(self) -> Job | None:
        """Accept the frame on screen and save it in the store at once (see :meth:`StorePersistence.accept`)."""
        return self.persistence.accept()

    def flush_drafts(self) -> Job | None:
        return self.persistence.flush_drafts()

    def confirm_close(self) -> bool:
        return self.persistence.confirm_close()

    # --- display ---------------------------------------------------------------------------
    def show_lines(self, on: bool) -> None:
        """Diameter lines on or off."""
        self.lines.set_enabled(on)
        self._refresh_now()

    def show_shortcuts(self) -> ShortcutsSheet:
        sheet = ShortcutsSheet(self.window)
        sheet.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        sheet.open()
        self.shortcuts_sheet = sheet
        return sheet
