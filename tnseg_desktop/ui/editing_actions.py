"""The editing controller's actions (with their shortcuts), its toolbar and the Edit and Segment menus."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMenu, QToolBar

from tnseg_desktop.ui.editing_panels import editing_toolbar_style
from tnseg_desktop.ui.export_menu import ExportMenu


class EditingActions:
    """Mixed into :class:`~tnseg_desktop.ui.editing_controller.EditingController`: builds its actions and menus."""

    def _act(self, text: str, slot, keys: list[str] | None = None, tip: str = "", checkable: bool = False) -> QAction:
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
            act = self._act(text, lambda checked=False, n=name: self.set_tool(n), [key], tip, checkable=True)
            self.tool_group.addAction(act)
            self.tool_actions[name] = act
        self.act_smaller = self._act("Smaller Brush", self.brush_size.shrink, ["["])
        self.act_larger = self._act("Larger Brush", self.brush_size.grow, ["]"])
        self.act_text = self._act("Text Prompt", self.focus_text, ["T"])
        self.act_fill = self._act("Fill holes", self.fill_holes, ["H"], "Fill holes in the mask")
        self.act_largest = self._act("Keep largest", self.keep_largest, ["Shift+K"], "Keep only the largest part")
        self.act_clear = self._act("Clear", self.clear, ["Delete"], "Clear the mask: no nodule on this frame")
        self.act_undo = self._act("Undo", self.undo, ["Ctrl+Z"])
        self.act_redo = self._act("Redo", self.redo, ["Ctrl+Shift+Z", "Ctrl+Y"])
        self.act_accept = self._act("Accept ✓", self.accept, ["Return", "Enter"], "Accept this frame: saved at once")
        self.act_segment = self._act("Segment Frame", self.segment_frame, ["S"])
        self.act_segment_all = self._act("Segment All Frames", self.segment_all, ["Shift+S"])
        self.act_back = self._act("Propagate Backward", lambda: self.propagate(-1), ["Shift+Left"])
        self.act_forward = self._act("Propagate Forward", lambda: self.propagate(1), ["Shift+Right"])
        self.act_cancel = self._act("Cancel Job", self.cancel_job, ["Escape"])
        self.act_fill_toggle = self._act("Mask Fill", lambda on: self.mask_controls.fill.setChecked(on), ["O"], checkable=True)
        self.act_outline_toggle = self._act("Mask Outline", lambda on: self.mask_controls.outline.setChecked(on), ["L"], checkable=True)
        self.act_lines_toggle = self._act("Diameter Lines", self._set_lines, ["M"], checkable=True)
        for a in (self.act_fill_toggle, self.act_outline_toggle, self.act_lines_toggle):
            a.setChecked(True)
        self.act_shortcuts = self._act("Keyboard Shortcuts", self.show_shortcuts, ["F1"])

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
        self._sync_history_actions()

    def _build_menus(self) -> None:
        w = self.window
        bar = w.menuBar()
        menus = {a.text().replace("&", ""): a for a in bar.actions()}
        self.export_menu = ExportMenu(w, self.store_worker, self._export_context, self._say, self._job_failed)
        file_menu = menus["File"].menu() if "File" in menus else None
        if file_menu is not None:
            file_menu.insertMenu(w.act_quit, self.export_menu)
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
