"""Binds the engine's EditingSession and the annotation store to the viewer window.

Threads: mouse and key handling, painting, undo/redo and drawing run on the GUI
thread (all light). Network passes (clicks, boxes, text, one frame's automatic
mask) run on the ``model`` worker, long jobs (segment all frames, propagate)
on the ``batch`` worker, and every store write (study registration, accept,
drafts, exports) on the ``store`` worker. The session's change notifications
come back through a Qt relay, so the window redraws on its own thread.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any, Callable

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QApplication, QMenu, QMessageBox, QToolBar

from tnseg_desktop.engine.measurements import measure
from tnseg_desktop.engine.session import Change, EditingSession, Origin
from tnseg_desktop.errors import UserFacingError
from tnseg_desktop.io.content_hash import content_hash
from tnseg_desktop.ui.background import Job, Relay, Worker
from tnseg_desktop.ui.editing_panels import MaskDisplayControls, editing_toolbar_style
from tnseg_desktop.ui.export_menu import ExportMenu
from tnseg_desktop.ui.frame_state_strip import FrameStateStrip, state_for_origin
from tnseg_desktop.ui.mask_overlay import MaskOverlay
from tnseg_desktop.ui.measurement_overlay import MeasurementLines, MeasurementPanel
from tnseg_desktop.ui.messages import user_message
from tnseg_desktop.ui.missing_weights_banner import MissingWeightsBanner
from tnseg_desktop.ui.model_provider import LoadedModels, ModelProvider
from tnseg_desktop.ui.model_toolbar import ModelPanel
from tnseg_desktop.ui.prompt_markers import PromptMarkers
from tnseg_desktop.ui.shortcuts_sheet import ShortcutsSheet
from tnseg_desktop.ui.text_prompt_field import TextPromptField
from tnseg_desktop.ui.tools import BoxTool, BrushCursor, BrushSize, BrushTool, ClickTool

log = logging.getLogger(__name__)

DRAFT_ORIGINS = (Origin.REFINED, Origin.PAINTED, Origin.PROPAGATED)
AUTOSAVE_MS = 3000


class _Frames:
    """The session's frame source: the viewer's decoded frame when it has one, else the cine."""

    def __init__(self, window, cine) -> None:
        self.window = window
        self.cine = cine

    def __len__(self) -> int:
        return len(self.cine)

    def frame(self, index: int) -> np.ndarray:
        if self.window.cine is self.cine:
            f = self.window.cached_frame(index)
            if f is not None:
                return f
        return self.cine.frame(index)


def _leave_a_core_for_the_window() -> None:
    """Model passes use all cores but one, so the GUI thread always finds a free core."""
    import os

    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))


def nearest_first(n: int, current: int) -> list[int]:
    return sorted(range(n), key=lambda i: (abs(i - current), i < current))


class EditingController(QObject):
    """Everything the correction workflow adds to a :class:`MainWindow`."""

    models_ready = Signal()
    accepted = Signal(int)  # frame index, once saved in the store
    job_finished = Signal(str)  # "segment all", "propagate", ...
    message = Signal(str)  # sentences shown in the status bar

    def __init__(self, window, provider: Any = None, store: Any = None, ask_recovery: bool = True,
                 autosave_ms: int = AUTOSAVE_MS) -> None:
        super().__init__(window)
        self.window = window
        self.canvas = window.canvas
        self.provider = provider if provider is not None else ModelProvider(store=store)
        self.store = store
        self.session: EditingSession | None = None
        self.models = LoadedModels()
        self.study_id: int | None = None
        self.autosaver: Any = None
        self.last_error: BaseException | None = None
        self.precompute: Any = None
        self._unsubscribe: Callable[[], None] | None = None
        self._batch_job: Job | None = None
        self._drafted: set[int] = set()
        self._refresh_pending = False
        self._shut = False

        self.model_worker = Worker("model", self)
        self.batch_worker = Worker("batch", self)
        self.store_worker = Worker("store", self)
        self.relay = Relay(self)
        self.relay.fired.connect(self._on_relay)

        self._build_canvas_layers()
        self._build_widgets()
        self._build_actions()
        self._build_menus()
        self.set_tool("click")

        window.source_opened.connect(self._on_source_opened)
        window.frame_displayed.connect(self._on_frame_displayed)
        window.playing_changed.connect(lambda playing: None if playing else self._schedule_refresh())
        window.close_guards.append(self.confirm_close)
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)

        self._autosave_timer = QTimer(self)
        self._autosave_timer.timeout.connect(self.flush_drafts)
        self._autosave_timer.start(autosave_ms)

        if self.store is not None:
            self._start_store_session(ask_recovery)
        self.load_models()

    # --- construction ------------------------------------------------------------
    def _build_canvas_layers(self) -> None:
        self.overlay = MaskOverlay(self.canvas)
        self.markers = PromptMarkers(self.canvas)
        self.lines = MeasurementLines(self.canvas)
        self.brush_size = BrushSize(6)
        self.brush_cursor = BrushCursor(self.canvas, self.brush_size)
        self.tools = {
            "click": ClickTool(self),
            "box": BoxTool(self, self.canvas, self.markers),
            "brush": BrushTool(self, self.canvas, self.brush_size),
            "eraser": BrushTool(self, self.canvas, self.brush_size, erase=True),
            "view": None,
        }
        self.tool_name = "view"

    def _build_widgets(self) -> None:
        w = self.window
        self.model_panel = ModelPanel()
        self.model_panel.segment_frame.connect(self.segment_frame)
        self.model_panel.segment_all.connect(self.segment_all)
        self.model_panel.cancel.connect(self.cancel_job)
        self.model_panel.propagate.connect(self.propagate)
        self.model_panel.auto_model_chosen.connect(lambda name: self.load_models(auto=name))
        self.model_panel.refiner_chosen.connect(lambda name: self.load_models(refiner=name))
        self.mask_controls = MaskDisplayControls(self.overlay, self.brush_size)
        self.measurement_panel = MeasurementPanel()
        w.add_side_widget("Model", self.model_panel, before_display=True)
        w.add_side_widget("Measurement", self.measurement_panel, before_display=True)
        w.add_side_widget("Mask", self.mask_controls)

        self.strip = FrameStateStrip()
        self.strip.frame_clicked.connect(lambda i: (w.pause(), w.go_to(i)))
        w.transport.set_frame_strip(self.strip)

        self.banner = MissingWeightsBanner()
        w.add_banner(self.banner)

        self.text_field = TextPromptField()
        self.text_field.setMinimumWidth(260)
        self.text_field.submitted.connect(self.apply_text)

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

    # --- models --------------------------------------------------------------------
    def load_models(self, auto: str | None = None, refiner: str | None = None) -> Job:
        """Load (or switch) models in the background; the banner and panel follow."""
        provider = self.provider
        auto = auto or self.models.auto_name
        refiner = refiner or self.models.refiner_name

        def work(job: Job) -> tuple[LoadedModels, list, list[str], list[str]]:
            _leave_a_core_for_the_window()
            return provider.load(auto, refiner), provider.missing(), provider.auto_names(), provider.refiner_names()

        self.model_panel.set_device("loading models…")
        return self.model_worker.submit(work, self._models_loaded, self._job_failed, name="load models")

    def _models_loaded(self, result) -> None:
        loaded, missing, autos, refiners = result
        self.models = loaded
        self.model_panel.set_models(autos, loaded.auto_name, refiners, loaded.refiner_name)
        self.model_panel.set_device(loaded.device_text)
        self.window.device_label.setText(f"Compute: {loaded.device_text}")
        self.banner.set_missing(missing)
        self.text_field.edit.setPlaceholderText(
            "Describe the target, e.g. nodule" if loaded.clip is not None else "Text prompts need CLIP-TNseg weights")
        for p in loaded.problems or []:
            self._say(p)
        if self.session is not None:
            self._install_models(self.session)
        self.models_ready.emit()

    def _install_models(self, session: EditingSession) -> None:
        session.set_auto_model(self.models.auto)
        session.set_refiner(self.models.refiner)
        session.set_clip_predictor(self.models.clip)
        self._restart_precompute()

    def _restart_precompute(self) -> None:
        if self.precompute is not None:
            self.precompute.cancel(wait=False)
            self.precompute = None
        refiner, session = self.models.refiner, self.session
        if session is None or refiner is None or not getattr(refiner, "needs_embedding", False):
            self.model_panel.set_embedding_progress(0, 0)
            return
        from tnseg_desktop.engine.precompute import Precompute

        relay = self.relay
        pre = Precompute(session.source, refiner, current=max(0, self.window.displayed_index),
                         on_progress=lambda i, done, total: relay.fired.emit("embed", (pre, done, total)))
        self.precompute = pre.start()
        self.model_panel.set_embedding_progress(0, pre.count)

    # --- source and session -------------------------------------------------------------
    def _on_source_opened(self, path: str) -> None:
        self._end_session()
        cine = self.window.cine
        if cine is None:
            return
        frames = _Frames(self.window, cine)
        session = EditingSession(frames, refiner=self.models.refiner, auto_model=self.models.auto)
        session.set_clip_predictor(self.models.clip)
        self.session = session
        relay = self.relay
        self._unsubscribe = session.subscribe(lambda i, ch: relay.fired.emit("session", (session, i, ch)))
        self.strip.set_count(len(session))
        self._drafted = set()
        self.study_id, self.autosaver = None, None
        self._restart_precompute()
        self._sync_history_actions()
        self._schedule_refresh()
        if self.store is not None:
            self.store_worker.submit(lambda job: self._register_study(session, frames, cine.meta),
                                     lambda saved: self._restore_saved(session, saved), self._job_failed,
                                     name="register study")

    def _register_study(self, session: EditingSession, frames: _Frames, meta) -> tuple[dict, dict]:
        """On the store thread: the study id, then its accepted masks and drafts to show again."""
        from tnseg_desktop.store import DraftAutosaver

        study_id = self.store.add_study(meta, content_hash(frames, meta))
        if session is self.session:
            self.study_id = study_id
            self.autosaver = DraftAutosaver(self.store, study_id)
        accepted = self.store.accepted_masks(study_id)
        drafts = {d.frame_index: (self.store.load_draft(study_id, d.frame_index), d.origin)
                  for d in self.store.drafts(study_id=study_id)}
        return accepted, drafts

    def _restore_saved(self, session: EditingSession, saved: tuple[dict, dict]) -> None:
        if session is not self.session:
            return
        accepted, drafts = saved
        for i, mask in accepted.items():
            if session.origin(i) is Origin.NONE:
                session.restore(i, mask, Origin.ACCEPTED)
        for i, (mask, origin) in drafts.items():
            if mask is not None and session.origin(i) in (Origin.NONE, Origin.ACCEPTED):
                session.restore(i, mask, Origin.PROPAGATED if origin == "propagated" else Origin.PAINTED)
                self._drafted.add(i)
        if drafts:
            self._say(f"{len(drafts)} unaccepted draft frame(s) of this cine were restored.")

    def _end_session(self) -> None:
        self.cancel_job()
        if self.precompute is not None:
            self.precompute.cancel(wait=False)
            self.precompute = None
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self.autosaver is not None:
            saver = self.autosaver
            self.store_worker.submit(lambda job: saver.flush(), None, self._job_failed, name="flush drafts")
        self.session = None

    # --- session events (GUI thread) ---------------------------------------------------------
    def _on_relay(self, kind: str, payload: Any) -> None:
        if kind == "session":
            session, index, change = payload
            if session is self.session:
                self._on_session_change(index, change)
        elif kind == "progress":
            job, done, total = payload
            if job is self._batch_job:
                self.model_panel.job_progress(done, total)
        elif kind == "embed":
            pre, done, total = payload
            if pre is self.precompute:
                self.model_panel.set_embedding_progress(done, total)

    def _on_session_change(self, index: int | None, change: Change) -> None:
        session = self.session
        assert session is not None
        self._sync_history_actions()
        if index is None:
            return
        origin = session.origin(index)
        self.strip.set_state(index, state_for_origin(origin.value))
        if self.autosaver is not None:
            if origin in DRAFT_ORIGINS:
                mask = session.mask(index)
                if mask is not None:
                    self.autosaver.mark_dirty(index, mask, origin.value)
                    self._drafted.add(index)
            elif index in self._drafted and origin is not Origin.ACCEPTED:
                self._drafted.discard(index)
                saver = self.autosaver
                self.store_worker.submit(lambda job: saver.discard(index), None, self._job_failed, name="discard draft")
        if index == self.window.displayed_index:
            self._schedule_refresh()

    def _on_frame_displayed(self, index: int) -> None:
        self.strip.set_current(index)
        if self.precompute is not None:
            self.precompute.set_current(index)
        self._refresh_now()

    def _schedule_refresh(self) -> None:
        # many changes in one event-loop turn (a stroke, a batch of masks) draw once
        if not self._refresh_pending:
            self._refresh_pending = True
            QTimer.singleShot(0, self._refresh_now)

    def _refresh_now(self) -> None:
        self._refresh_pending = False
        index = self.window.displayed_index
        if self.session is None or index < 0 or index >= len(self.session):
            self.overlay.set_mask(None)
            self.markers.set_prompts([], None)
            self.lines.show(None)
            self.measurement_panel.show_measurement(None, None)
            return
        view = self.session.view(index)
        if self.window.is_playing:
            # while the loop plays only the fill follows each frame; outline, markers and sizes come on pause
            self.overlay.set_mask(view.mask, outline=False)
            self.markers.set_prompts([], None)
            self.lines.show(None)
            return
        self.overlay.set_mask(view.mask)
        self.markers.set_prompts([(c.row, c.col, c.positive) for c in view.prompts.clicks], view.prompts.box)
        m = measure(view.mask, self._spacing()) if view.mask is not None else None
        self.lines.show(m)
        self.measurement_panel.show_measurement(m, index)

    def _spacing(self) -> tuple[float, float] | None:
        meta = self.window.meta
        return tuple(meta.pixel_spacing_mm) if meta is not None and meta.pixel_spacing_mm else None  # type: ignore[return-value]

    def _sync_history_actions(self) -> None:
        s = self.session
        self.act_undo.setEnabled(s is not None and s.can_undo)
        self.act_redo.setEnabled(s is not None and s.can_redo)

    # --- helpers --------------------------------------------------------------------------
    def _frame(self) -> int | None:
        """The frame edits go to: the one on screen."""
        index = self.window.displayed_index
        if self.session is None or index < 0:
            self._say("Open a cine and wait for its first frame before editing.")
            return None
        return index

    def _say(self, text: str) -> None:
        self.window.statusBar().showMessage(text, 8000)
        self.message.emit(text)

    def _job_failed(self, exc: BaseException) -> None:
        self.last_error = exc
        self._say(user_message(exc, "The operation failed"))

    def _model_job(self, name: str, fn: Callable[[EditingSession, int], Any]) -> Job | None:
        index = self._frame()
        if index is None:
            return None
        session = self.session
        assert session is not None
        return self.model_worker.submit(lambda job: fn(session, index), None, self._job_failed, name=name)

    # --- tools (ToolTarget) ------------------------------------------------------------------
    def set_tool(self, name: str) -> None:
        tool = self.tools[name]
        self.tool_name = name
        self.tool_actions[name].setChecked(True)
        self.canvas.set_tool(tool)
        self.brush_cursor.set_enabled(name in ("brush", "eraser"), erase=name == "eraser")
        cursor = getattr(tool, "cursor", Qt.CursorShape.ArrowCursor)
        self.canvas.viewport().setCursor(cursor)

    def tool_click(self, row: int, col: int, positive: bool) -> None:
        index = self._frame()
        if index is None:
            return
        if self.models.refiner is None:
            self._say("Clicks need a refiner model (none is installed); use the brush and eraser instead.")
            return
        # show the marker at once; the mask follows when the refiner answers
        shown = self.markers.points + [(row, col, positive)]
        box = self.session.prompts(index).box if self.session is not None else None
        self.markers.set_prompts(shown, box)
        self._model_job("click", lambda s, i: s.add_click(i, row, col, positive))

    def tool_box(self, box: tuple[int, int, int, int] | None) -> None:
        if box is not None and self.models.refiner is None:
            self._say("Boxes need a refiner model (none is installed); use the brush and eraser instead.")
            return
        self._model_job("box", lambda s, i: s.set_box(i, box))

    def tool_paint(self, points: list[tuple[int, int]], radius: int, erase: bool, stroke: str) -> None:
        index = self._frame()
        if index is None:
            return
        assert self.session is not None
        if erase:
            self.session.erase_stroke(index, points, radius, group=("stroke", stroke))
        else:
            self.session.paint_stroke(index, points, radius, group=("stroke", stroke))

    # --- commands ------------------------------------------------------------------------------
    def focus_text(self) -> None:
        self.text_field.edit.setFocus()
        self.text_field.edit.selectAll()

    def apply_text(self, phrase: str) -> Job | None:
        self.canvas.setFocus()
        return self._model_job("text", lambda s, i: s.apply_text(i, phrase))

    def _light(self, fn: Callable[[EditingSession, int], Any]) -> None:
        index = self._frame()
        if index is not None:
            assert self.session is not None
            fn(self.session, index)

    def fill_holes(self) -> None:
        self._light(lambda s, i: s.fill_holes(i))

    def keep_largest(self) -> None:
        self._light(lambda s, i: s.keep_largest_component(i))

    def clear(self) -> None:
        self._light(lambda s, i: s.clear(i))

    def undo(self) -> None:
        if self.session is not None and not self.session.undo():
            self._say("Nothing to undo.")

    def redo(self) -> None:
        if self.session is not None and not self.session.redo():
            self._say("Nothing to redo.")

    def accept(self) -> Job | None:
        """Accept the frame on screen and save it in the store at once (on the store thread)."""
        index = self._frame()
        if index is None:
            return None
        session = self.session
        assert session is not None
        before = session.view(index)
        session.accept(index)
        self._drafted.discard(index)
        mask = session.mask(index)
        info = self._edit_info(before)
        spacing = self._spacing()
        if self.store is None:
            self._say(f"Frame {index + 1} accepted (no annotation store is open, so it is not saved).")
            return None

        def save(job: Job):
            if self.autosaver is None or session is not self.session:
                raise UserFacingError("The annotation store was not ready; accept the frame again.")
            size = measure(mask, spacing) if mask is not None else None
            edit_info = replace(info, measurements=size.to_dict() if size is not None else None)
            return self.autosaver.accept(index, mask, original_mask=before.auto_mask, edit_info=edit_info)

        def saved(_record) -> None:
            self._say(f"Frame {index + 1} accepted and saved.")
            self.accepted.emit(index)

        return self.store_worker.submit(save, saved, self._job_failed, name="accept")

    def _edit_info(self, view):
        from tnseg_desktop.store import EditInfo

        prompts = view.prompts
        tool = {Origin.AUTO: "auto", Origin.PAINTED: "paint", Origin.PROPAGATED: "propagate",
                Origin.ACCEPTED: "accept", Origin.NONE: "empty"}.get(view.origin, "click")
        if view.origin is Origin.REFINED:
            tool = "text" if prompts.text else ("box" if prompts.box is not None and not prompts.clicks else "click")
        model = self.models.auto_name if view.origin is Origin.AUTO else self.models.refiner_name
        clicks = [{"x": c.col, "y": c.row, "positive": c.positive} for c in prompts.clicks]
        return EditInfo(tool=tool, prompt=prompts.text, clicks=clicks, model_name=model)

    def segment_frame(self) -> Job | None:
        if self.models.auto is None:
            self._say("No segmentation model is installed; paint the mask with the brush instead.")
            return None
        return self._model_job("segment frame", lambda s, i: s.auto_mask(i))

    def segment_all(self) -> Job | None:
        """Automatic masks for every frame, nearest to the one on screen first; cancellable."""
        if self.session is None or self.models.auto is None:
            self._say("No segmentation model is installed; paint the mask with the brush instead."
                      if self.session is not None else "Open a cine first.")
            return None
        if self._batch_job is not None:
            return None
        session, relay = self.session, self.relay
        order = nearest_first(len(session), max(0, self.window.displayed_index))
        holder: dict[str, Job] = {}

        def work(job: Job) -> str:
            done = session.auto_mask_range(order, progress=lambda d, t: relay.fired.emit("progress", (job, d, t)),
                                           should_stop=lambda: job.cancelled, batch_size=2)
            return f"Segmented {len(done)} of {len(order)} frames" + (" (cancelled)." if job.cancelled else ".")

        job = self.batch_worker.submit(work, lambda text: self._batch_done(holder["job"], text),
                                       lambda exc: self._batch_failed(holder["job"], exc), name="segment all")
        holder["job"] = job
        self._batch_job = job
        self.model_panel.job_started("Segmenting all frames…", len(order))
        return job

    def propagate(self, direction: int) -> Job | None:
        index = self._frame()
        if index is None or self._batch_job is not None:
            return None
        if self.models.refiner is None:
            self._say("Propagation needs a refiner model (none is installed).")
            return None
        session, relay = self.session, self.relay
        holder: dict[str, Job] = {}

        def work(job: Job) -> str:
            from tnseg_desktop.engine.propagation import propagate

            res = propagate(session, index, direction, progress=lambda d, t: relay.fired.emit("progress", (job, d, t)),
                            should_stop=lambda: job.cancelled)
            text = f"Propagated to {len(res.frames)} frame(s) for review"
            if res.stopped_at is not None:
                text += f"; stopped at frame {res.stopped_at + 1}: {res.reason.value}"
            return text + "."

        job = self.batch_worker.submit(work, lambda text: self._batch_done(holder["job"], text),
                                       lambda exc: self._batch_failed(holder["job"], exc), name="propagate")
        holder["job"] = job
        self._batch_job = job
        total = (len(session) - 1 - index) if direction > 0 else index
        self.model_panel.job_started("Propagating " + ("forward…" if direction > 0 else "backward…"), total)
        return job

    def _batch_done(self, job: Job, text: str) -> None:
        if job is self._batch_job:
            self._batch_job = None
            self.model_panel.job_finished(text)
        self._say(text)
        self.job_finished.emit(job.name)

    def _batch_failed(self, job: Job, exc: BaseException) -> None:
        if job is self._batch_job:
            self._batch_job = None
            self.model_panel.job_finished("")
        self._job_failed(exc)
        self.job_finished.emit(job.name)

    def cancel_job(self) -> None:
        if self._batch_job is not None:
            self._batch_job.cancel()
            self.model_panel.job_label.setText("Cancelling…")

    @property
    def busy(self) -> bool:
        return self.model_worker.busy or self.batch_worker.busy

    # --- display ---------------------------------------------------------------------------
    def _set_lines(self, on: bool) -> None:
        self.lines.set_enabled(on)
        self._refresh_now()

    def show_shortcuts(self) -> ShortcutsSheet:
        sheet = ShortcutsSheet(self.window)
        sheet.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        sheet.open()
        self.shortcuts_sheet = sheet
        return sheet

    # --- store: recovery, drafts, export, closing -------------------------------------------
    def _start_store_session(self, ask: bool) -> None:
        info = self.store.recover()
        self.store.start_session()
        if info is None:
            return
        if not ask:
            self.store.finish_recovery(info, restore=True)
            return

        def offer() -> None:
            from tnseg_desktop.ui.recovery_dialog import ask_restore

            restore = ask_restore(info, self.window)
            self.store.finish_recovery(info, restore=restore)
            if restore and info.studies and self.window.cine is None:
                import os

                path = info.studies[0].source_path
                if os.path.exists(path):
                    self.window.open_path(path)

        QTimer.singleShot(0, offer)

    def flush_drafts(self) -> Job | None:
        saver = self.autosaver
        if saver is None or not saver.pending:
            return None
        return self.store_worker.submit(lambda job: saver.flush(), None, self._job_failed, name="autosave")

    def unaccepted_frames(self) -> list[int]:
        if self.session is None:
            return []
        return sorted(i for o in DRAFT_ORIGINS for i in self.session.frames_with(o))

    def confirm_close(self) -> bool:
        """Close guard: asks when frames hold edits that are not accepted; drafts are saved either way."""
        frames = self.unaccepted_frames()
        if frames:
            box = QMessageBox(QMessageBox.Icon.Question, "Unaccepted edits",
                              f"{len(frames)} frame(s) have edits that are not accepted yet.", parent=self.window)
            box.setInformativeText("They are kept as drafts and come back when you open this cine again. "
                                   "Accept a frame with Enter to save it as final.")
            close = box.addButton("Close", QMessageBox.ButtonRole.AcceptRole)
            stay = box.addButton("Keep Editing", QMessageBox.ButtonRole.RejectRole)
            box.setDefaultButton(stay)
            self.close_question = box
            box.exec()
            if box.clickedButton() is not close:
                return False
        job = self.flush_drafts()
        if job is not None:
            job.finished.wait(10.0)
        return True

    def _export_context(self) -> tuple | None:
        if self.store is None or self.study_id is None or self.window.meta is None:
            return None
        meta = self.window.meta
        return (self.store, self.study_id, meta.source_path, bool(meta.is_dicom), self.models.auto_name)

    def shutdown(self) -> None:
        """Stop background work and close the store cleanly (idempotent)."""
        if self._shut:
            return
        self._shut = True
        self._autosave_timer.stop()
        self._end_session()
        for w in (self.model_worker, self.batch_worker, self.store_worker):
            w.stop(5.0)
        if self.store is not None:
            try:
                self.store.close()
            except Exception as exc:
                log.warning("closing the annotation store failed: %s", exc)


def attach_editing(window, **kwargs: Any) -> EditingController:
    """Add the correction workflow to ``window`` (see :class:`EditingController` for the options)."""
    controller = EditingController(window, **kwargs)
    window.editing = controller
    return controller


def attach_editing_for_app(window, with_store: bool = True) -> EditingController:
    """The interactive app's set-up: real models, the user's annotation store (if it opens), recovery offered."""
    store = None
    if with_store:
        try:
            from tnseg_desktop.store import AnnotationStore

            store = AnnotationStore()
        except Exception as exc:  # a locked or damaged store must not stop viewing
            log.error("the annotation store could not be opened: %s", exc)
            window.report_error(exc, title="Annotation store unavailable")
    return attach_editing(window, store=store, ask_recovery=True)
