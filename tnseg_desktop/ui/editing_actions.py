"""The editing controller's actions (with their shortcuts), its toolbar and the Edit and Segment menus."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Protocol

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMenu, QToolBar

from tnseg_desktop.engine.session import EditingSession
from tnseg_desktop.ui.editing_panels import MaskDisplayControls, editing_toolbar_style
from tnseg_desktop.ui.export_menu import ExportMenu
from tnseg_desktop.ui.text_prompt_field import TextPromptField
from tnseg_desktop.ui.tools import BrushSize

if TYPE_CHECKING:
    from tnseg_desktop.ui.main_window import MainWindow


class ActionTarget(Protocol):
    """The commands the actions trigger (the editing controller)."""

    def set_tool(self, name: str) -> None: ...

    def focus_text(self) -> None: ...

    def fill_holes(self) -> None: ...

    def keep_largest(self) -> None: ...

    def clear(self) -> None: ...

    def undo(self) -> None: ...

    def redo(self) -> None: ...

    def accept(self) -> Any: ...

    def segment_frame(self) -> Any: ...

    def segment_all(self) -> Any: ...

    def propagate(self, direction: int) -> Any: ...

    def cancel_job(self) -> None: ...

    def show_lines(self, on: bool) -> None: ...

    def show_shortcuts(self) -> Any: ...


class EditingActions:
    """The editing actions with their shortcuts, the editing toolbar, and (:meth:`add_menus`) the Edit and
    Segment menus and the editing entries of the File, View and Help menus of ``window``."""

    def __init__(self, window: MainWindow, target: ActionTarget, brush_size: BrushSize, text_field: TextPromptField,
                 mask_controls: MaskDisplayControls) -> None:
        self.window: MainWindow = window
        self.target: ActionTarget = target
        self.brush_size: BrushSize = brush_size
        self.text_field: TextPromptField = text_field
        self.mask_controls: MaskDisplayControls = mask_controls
        self._build_actions()

    def _act(self, text: str, slot: Callable[..., Any], keys: list[str] | None = None, tip: str = "",
             checkable: bool = False) -> QAction:
        act = QAction(text, self.window)
        if keys:
            act.setShortcuts([QKeySequence(k) for k in keys])
        act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        shown = f" ({keys[0]})" if keys else ""
        act.setToolTip(f"{tip or text}{shown}")
        act.setCheckable(checkable)
        act.triggered.connect(slot)
        self.window.addAction(act)
        return act

    def _build_actions(self) -> None:
        t = self.target
        self.tool_group = QActionGroup(self.window)
        self.tool_group.setExclusive(True)
        self.tool_actions: dict[str, QAction] = {}
        for name, text, key, tip in (
            ("view", "View", "V", "View only: drag pans, wheel zooms"),
            ("click", "Click", "C", "Click tool: left click adds, right click or Shift+click removes"),
            ("box", "Box", "X", "Box tool: drag a box around the nodule"),
            ("brush", "Brush", "B", "Brush: paint the mask; [ and ] or Ctrl+wheel change the size"),
            ("eraser", "Eraser", "E", "Eraser: remove from the mask; [ and ] or Ctrl+wheel change the size"),
        ):
            act = self._act(text, lambda checked=False, n=name: t.set_tool(n), [key], tip, checkable=True)
            self.tool_group.addAction(act)
            self.tool_actions[name] = act
        self.act_smaller = self._act("Smaller Brush", self.brush_size.shrink, ["["])
        self.act_larger = self._act("Larger Brush", self.brush_size.grow, ["]"])
        self.act_text = self._act("Text Prompt", t.focus_text, ["T"])
        self.act_fill = self._act("Fill holes", t.fill_holes, ["H"], "Fill holes in the mask")
        self.act_largest = self._act("Keep largest", t.keep_largest, ["Shift+K"], "Keep only the largest part")
        self.act_clear = self._act("Clear", t.clear, ["Delete"], "Clear the mask: no nodule on this frame")
        self.act_undo = self._act("Undo", t.undo, ["Ctrl+Z"])
        self.act_redo = self._act("Redo", t.redo, ["Ctrl+Shift+Z", "Ctrl+Y"])
        self.act_accept = self._act("Accept ✓", t.accept, ["Return", "Enter"], "Accept this frame: saved at once")
        self.act_segment = self._act("Segment Frame", t.segment_frame, ["S"])
        self.act_segment_all = self._act("Segment All Frames", t.segment_all, ["Shift+S"])
        self.act_back = self._act("Propagate Backward", lambda: t.propagate(-1), ["Shift+Left"])
        self.act_forward = self._act("Propagate Forward", lambda: t.propagate(1), ["Shift+Right"])
        self.act_cancel = self._act("Cancel Job", t.cancel_job, ["Escape"])
        self.act_fill_toggle = self._act("Mask Fill", lambda on: self.mask_controls.fill.setChecked(on), ["O"], checkable=True)
        self.act_outline_toggle = self._act("Mask Outline", lambda on: self.mask_controls.outline.setChecked(on), ["L"], checkable=True)
        self.act_lines_toggle = self._act("Diameter Lines", t.show_lines, ["M"], checkable=True)
        for a in (self.act_fill_toggle, self.act_outline_toggle, self.act_lines_toggle):
            a.setChecked(True)
        self.act_shortcuts = self._act("Keyboard Shortcuts", t.show_shortcuts, ["F1"])

        tb = QToolBar("Editing")
        tb.setObjectName("EditingToolbar")
        tb.setMovable(False)
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        tb.setStyleSheet(editing_toolbar_style())
        for name in ("view", "click", "box", "brush", "eraser"):
            tb.addAction(self.tool_actions[name])
        tb.addSeparator()
        for a in (self.act_fill, self.act_clear, self.act_undo, self.act_redo):
            tb.addAction(a)
        tb.addSeparator()
        tb.addWidget(self.text_field)
        tb.addSeparator()
        tb.addAction(self.act_accept)
        accept_button = tb.widgetForAction(self.act_accept)
        if accept_button is not None:
            accept_button.setObjectName("AcceptButton")
        self.toolbar = tb
        self.window.addToolBar(Qt.ToolBarArea.TopToolBarArea, tb)
        self.sync_history(None)

    def sync_history(self, session: EditingSession | None) -> None:
        """Undo, redo and accept as ``session`` (the open cine's, or None) allows them."""
        self.act_undo.setEnabled(session is not None and session.can_undo)
        self.act_redo.setEnabled(session is not None and session.can_redo)
        self.act_accept.setEnabled(session is not None)  # nothing to accept before a file is open

    def add_menus(self, export_menu: ExportMenu) -> None:
        w = self.window
        bar = w.menuBar()
        menus = {a.text().replace("&", ""): a for a in bar.actions()}
        file_menu = menus["File"].menu() if "File" in menus else None
        if file_menu is not None:
            file_menu.insertMenu(w.act_quit, export_menu)
            file_menu.insertSeparator(w.act_quit)
        edit = QMenu("&Edit", w)
        for a in (self.act_undo, self.act_redo):
            edit.addAction(a)
        edit.addSeparator()
        tools = edit.addMenu("&Tool")
        for name in ("view", "click", "box", "brush", "eraser"):
            tools.addAction(self.tool_actions[name])
        for a in (self.act_smaller, self.act_larger, self.act_text):
            edit.addAction(a)
        edit.addSeparator()
        for a in (self.act_fill, self.act_largest, self.act_clear):
            edit.addAction(a)
        edit.addSeparator()
        edit.addAction(self.act_accept)
        segment = QMenu("&Segment", w)
        for a in (self.act_segment, self.act_segment_all, self.act_back, self.act_forward, self.act_cancel):
            segment.addAction(a)
        before = menus.get("View")
        if before is not None:
            bar.insertMenu(before, edit)
            bar.insertMenu(before, segment)
        else:
            bar.addMenu(edit)
            bar.addMenu(segment)
        view = menus.get("View")
        if view is not None:
            view.menu().addSeparator()
            for a in (self.act_fill_toggle, self.act_outline_toggle, self.act_lines_toggle):
                view.menu().addAction(a)
        help_menu = menus.get("Help")
        if help_menu is not None:
            help_menu.menu().insertAction(help_menu.menu().actions()[0] if help_menu.menu().actions() else None,
                                          self.act_shortcuts)
