"""The viewer window's actions (with their shortcuts), its menus, the recent-files menu and the status bar."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QLabel

from tnseg_desktop.ui import recent_files


class ViewerMenus:
    """Mixed into :class:`~tnseg_desktop.ui.main_window.MainWindow`: builds its actions, menus and status bar."""

    def _action(self, text: str, slot, shortcuts: list[str] | None = None, tip: str = "") -> QAction:
        act = QAction(text, self)
        if shortcuts:
            act.setShortcuts([QKeySequence(s) for s in shortcuts])
        act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        if tip:
            act.setStatusTip(tip)
        act.triggered.connect(slot)
        self.addAction(act)  # shortcuts work even while the menu bar is hidden
        return act

    def _build_actions(self) -> None:
        self.act_open_file = self._action("&Open File…", self.choose_file, ["Ctrl+O"])
        self.act_open_folder = self._action("Open &Folder…", self.choose_folder, ["Ctrl+Shift+O"])
        self.act_clear_recent = self._action("Clear List", self._clear_recent)
        self.act_quit = self._action("&Quit", self.close, ["Ctrl+Q"])
        self.act_play = self._action("&Play / Pause", self.toggle_play, ["Space"])
        self.act_prev = self._action("P&revious Frame", lambda: self.step(-1), ["Left", ","])
        self.act_next = self._action("&Next Frame", lambda: self.step(1), ["Right", "."])
        self.act_first = self._action("&First Frame", lambda: self._jump(0), ["Home"])
        self.act_last = self._action("&Last Frame", lambda: self._jump(self._n_frames - 1), ["End"])
        self.act_fit = self._action("&Fit to Window", self.canvas.fit, ["F", "Ctrl+0"])
        self.act_zoom_in = self._action("Zoom &In", lambda: self.canvas.zoom_by(1.25), ["Ctrl++", "Ctrl+="])
        self.act_zoom_out = self._action("Zoom &Out", lambda: self.canvas.zoom_by(0.8), ["Ctrl+-"])
        self.act_reset_display = self._action("&Reset Brightness/Contrast", self.display_controls.reset, ["R"])
        self.act_about = self._action("&About tnseg-desktop", self._about)
        self.act_models = self._action("&Models…", self.show_models_dialog, tip="Model files: status, licences, import, download")
        self._source_actions = [self.act_reset_display, self.act_play, self.act_prev, self.act_next, self.act_first, self.act_last,
                                self.act_fit, self.act_zoom_in, self.act_zoom_out]
        self._set_source_actions_enabled(False)

    def _build_menus(self) -> None:
        bar = self.menuBar()
        m = bar.addMenu("&File")
        m.addAction(self.act_open_file)
        m.addAction(self.act_open_folder)
        self.recent_menu = m.addMenu("Open &Recent")
        m.addSeparator()
        m.addAction(self.act_quit)
        self._refresh_recent_menu(recent_files.load_recent())

        m = bar.addMenu("&View")
        for a in (self.act_fit, self.act_zoom_in, self.act_zoom_out):
            m.addAction(a)
        m.addSeparator()
        m.addAction(self.act_reset_display)

        m = bar.addMenu("&Playback")
        for a in (self.act_play, self.act_prev, self.act_next, self.act_first, self.act_last):
            m.addAction(a)

        m = bar.addMenu("&Help")
        m.addAction(self.act_models)
        m.addAction(self.act_about)

    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        sb.setSizeGripEnabled(False)
        self.pixel_label = QLabel("")
        self.cache_label = QLabel("")
        self.device_label = QLabel("Compute: checking…")
        for w in (self.pixel_label, self.cache_label, self.device_label):
            sb.addPermanentWidget(w)

    def _set_source_actions_enabled(self, enabled: bool) -> None:
        self.display_controls.setEnabled(enabled)
        for a in self._source_actions:
            a.setEnabled(enabled)

    def _refresh_recent_menu(self, paths: list[str]) -> None:
        self.recent_menu.clear()
        for p in paths:
            act = self.recent_menu.addAction(p)
            act.triggered.connect(lambda checked=False, p=p: self.open_path(p))
        if paths:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction(self.act_clear_recent)
        self.recent_menu.setEnabled(bool(paths))

    def _clear_recent(self) -> None:
        recent_files.clear_recent()
        self._refresh_recent_menu([])
