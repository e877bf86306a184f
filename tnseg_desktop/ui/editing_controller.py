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
from typing import Any, Callable

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QApplication

from tnseg_desktop.engine.measurements import measure
from tnseg_desktop.engine.out_of_range import ModelRange
from tnseg_desktop.engine.session import Change, EditingSession, Origin
from tnseg_desktop.engine.view_regions import Views, confine_models, views_of
from tnseg_desktop.ui.background import Job, Relay, Worker
from tnseg_desktop.ui.editing_actions import EditingActions
from tnseg_desktop.ui.editing_jobs import ModelJobs
from tnseg_desktop.ui.editing_panels import MaskDisplayControls
from tnseg_desktop.ui.editing_persistence import DRAFT_ORIGINS, StorePersistence
from tnseg_desktop.ui.frame_state_strip import FrameStateStrip, state_for_origin
from tnseg_desktop.ui.mask_overlay import MaskOverlay
from tnseg_desktop.ui.measurement_overlay import MeasurementLines, MeasurementPanel
from tnseg_desktop.ui.messages import user_message
from tnseg_desktop.ui.missing_weights_banner import MissingWeightsBanner
from tnseg_desktop.ui.model_provider import LoadedModels, ModelProvider
from tnseg_desktop.ui.model_panel import ModelPanel
from tnseg_desktop.ui.prompt_markers import PromptMarkers
from tnseg_desktop.ui.shortcuts_sheet import ShortcutsSheet
from tnseg_desktop.ui.store_banner import StoreProblemBanner
from tnseg_desktop.ui.text_prompt_field import TextPromptField
from tnseg_desktop.ui.tools import BoxTool, BrushCursor, BrushSize, BrushTool, ClickTool

log = logging.getLogger(__name__)

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


class EditingController(QObject, EditingActions, ModelJobs, StorePersistence):
    """Everything the correction workflow adds to a :class:`MainWindow`.

    This module holds construction, the session's life and events, drawing and the tools; the mixins hold
    the actions and menus (ui/editing_actions.py), model loading and jobs (ui/editing_jobs.py) and the
    store side: accept, drafts, recovery, closing (ui/editing_persistence.py).
    """

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
        self.chosen_auto: str | None = None  # the automatic model the user picked (None: the provider's default)
        self.views = Views((0, 0), ())  # the open cine's ultrasound image regions (none: the whole frame)
        self.model_range: ModelRange | None = None  # judges the automatic model's masks (set when models load)
        self._verdicts: dict[int, str | None] = {}  # frame -> out-of-range sentence of its automatic mask
        self._verdicts_pending: set[int] = set()
        self.study_id: int | None = None
        self.autosaver: Any = None
        self.last_error: BaseException | None = None
        self.precompute: Any = None
        self._retired_precomputes: list[Any] = []  # cancelled, maybe still finishing a frame; joined at shutdown
        self._unsubscribe: Callable[[], None] | None = None
        self._batch_job: Job | None = None
        self._drafted: set[int] = set()
        self._refresh_pending = False
        self._shut = False
        self.store_root: Any = getattr(store, "root", None)  # where a damaged store is restored

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
        # each goes right below the file's info: Model ends up above Measurement, so that its job status line
        # ("Segmented 20 of 20 frames") stays in view on a 1280x800 screen
        w.add_side_widget("Measurement", self.measurement_panel, before_display=True)
        w.add_side_widget("Model", self.model_panel, before_display=True)
        w.add_side_widget("Mask", self.mask_controls)

        self.strip = FrameStateStrip()
        self.strip.frame_clicked.connect(lambda i: (w.pause(), w.go_to(i)))
        w.transport.set_frame_strip(self.strip)

        self.banner = MissingWeightsBanner()
        w.add_banner(self.banner)
        self.store_banner = StoreProblemBanner()
        self.store_banner.restore_requested.connect(self.restore_store)
        w.add_banner(self.store_banner)

        self.text_field = TextPromptField()
        self.text_field.setMinimumWidth(260)
        self.text_field.submitted.connect(self.apply_text)

    # --- source and session -------------------------------------------------------------
    def _on_source_opened(self, path: str) -> None:
        self._end_session()
        cine = self.window.cine
        if cine is None:
            return
        frames = _Frames(self.window, cine)
        self.views = views_of(cine.meta)
        auto, refiner = self.session_models()
        session = EditingSession(frames, refiner=refiner, auto_model=auto)
        session.set_clip_predictor(self.models.clip)
        self.session = session
        relay = self.relay
        self._unsubscribe = session.subscribe(lambda i, ch: relay.send("session", (session, i, ch)))
        self.strip.set_count(len(session))
        self._drafted = set()
        self.study_id, self.autosaver = None, None
        self._restart_precompute()
        self._sync_history_actions()
        self._schedule_refresh()
        self._register_open_study()

    def session_models(self) -> tuple[Any, Any]:
        """The loaded models as the open cine's session uses them: answers kept within one view of the frame."""
        self._verdicts.clear()
        return confine_models(self.models.auto, self.models.refiner, self.views)

    def _out_of_range(self, index: int) -> str | None:
        """The out-of-range sentence for the automatic mask on frame ``index``; judged once, on the model worker."""
        session = self.session
        if session is None or self.model_range is None or session.auto_model is None:
            return None
        if index in self._verdicts:
            return self._verdicts[index]
        if index not in self._verdicts_pending:
            self._verdicts_pending.add(index)
            model_range, model = self.model_range, session.auto_model

            def judge(job: Job) -> str | None:
                frame = session.frame(index)
                return model_range.verdict(model.auto_probs([frame])[0], frame)

            def judged(verdict: str | None) -> None:
                self._verdicts_pending.discard(index)
                if session is self.session:
                    self._verdicts[index] = verdict
                    if index == self.window.displayed_index:
                        self._schedule_refresh()

            def failed(exc: BaseException) -> None:  # a frame that cannot be judged is shown without a verdict
                self._verdicts_pending.discard(index)

            self.model_worker.submit(judge, judged, failed, name="range check")
        return None

    def _register_open_study(self) -> None:
        """Register the open cine in the store (on the store thread) and show its saved masks again."""
        session, cine = self.session, self.window.cine
        if self.store is None or session is None or cine is None:
            return
        frames = session.source
        self.store_worker.submit(lambda job: self._register_study(session, frames, cine.meta),
                                 lambda saved: self._restore_saved(session, saved), self._job_failed,
                                 name="register study")

    def _end_session(self) -> None:
        self.cancel_job()
        self._retire_precompute()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self.autosaver is not None:
            saver = self.autosaver
            self.store_worker.submit(lambda job: saver.flush(), None, self._job_failed, name="flush drafts")
        self.session = None
        self._verdicts.clear()
        self._sync_history_actions()

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
        if origin is Origin.AUTO:
            self._verdicts.pop(index, None)  # a new automatic mask is judged anew
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
        # sizes are of one view: a mask painted across two views is measured in the view holding most of it
        m = measure(self.views.confine(view.mask), self._spacing()) if view.mask is not None else None
        warning = self._out_of_range(index) if m is not None and view.origin is Origin.AUTO else None
        self.lines.show(m, warning, _below(view.mask) if warning else None)
        self.measurement_panel.show_measurement(m, index, warning=warning)

    def _spacing(self) -> tuple[float, float] | None:
        meta = self.window.meta
        return tuple(meta.pixel_spacing_mm) if meta is not None and meta.pixel_spacing_mm else None  # type: ignore[return-value]

    def _sync_history_actions(self) -> None:
        s = self.session
        self.act_undo.setEnabled(s is not None and s.can_undo)
        self.act_redo.setEnabled(s is not None and s.can_redo)
        self.act_accept.setEnabled(s is not None)  # nothing to accept before a file is open

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

    # --- closing ------------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Stop background work and close the store cleanly (idempotent)."""
        if self._shut:
            return
        self._shut = True
        self._autosave_timer.stop()
        self._end_session()
        self._join_retired_precomputes()
        for w in (self.model_worker, self.batch_worker, self.store_worker):
            w.stop(5.0)
        if self.store is not None:
            try:
                self.store.close()
            except Exception as exc:
                log.warning("closing the annotation store failed: %s", exc)


def _below(mask: np.ndarray) -> tuple[float, float, bool]:
    """Where a tag about the mask goes: (x, y, right-aligned) just below it (above it near the frame's bottom),
    from its left edge, or up to its right edge when it lies in the right half of the frame."""
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return 0.0, 0.0, False
    h, w = mask.shape
    bottom = float(rows.max() + 1)
    y = bottom + 4 if bottom < h * 0.93 else max(0.0, float(rows.min()) - 0.07 * h)
    right = (cols.min() + cols.max()) / 2 > w / 2
    return (float(cols.max() + 1) if right else float(cols.min())), y, bool(right)


def attach_editing(window, **kwargs: Any) -> EditingController:
    """Add the correction workflow to ``window`` (see :class:`EditingController` for the options)."""
    controller = EditingController(window, **kwargs)
    window.editing = controller
    return controller


def attach_editing_for_app(window, with_store: bool = True, provider: Any = None) -> EditingController:
    """The interactive app's set-up: real models, the user's annotation store (if it opens), recovery offered.

    A damaged, missing or locked store never stops the window: viewing goes on, a banner says what is
    wrong and offers the last good copy.
    """
    store, problem, backup, root = None, None, None, None
    if with_store:
        from tnseg_desktop import paths
        from tnseg_desktop.store import AnnotationStore, StoreDamagedError

        root = paths.store_dir()
        try:
            store = AnnotationStore(root)
        except StoreDamagedError as exc:
            problem, backup = exc.one_line(), exc.backup
        except Exception as exc:  # a locked or unreadable store must not stop viewing
            log.error("the annotation store could not be opened: %s", exc)
            window.report_error(exc, title="Annotation store unavailable")
        if store is not None and store.read_only:
            # the editing side needs a store it can write; viewing needs none
            problem, backup = f"{store.db_path}: {store.problem}", store.backup_offer
            store.close()
            store = None
    controller = attach_editing(window, store=store, ask_recovery=True, provider=provider)
    controller.store_root = root
    if store is not None:
        from tnseg_desktop import paths

        controller.clean_leftovers(paths.user_models_dir())
    if problem is not None:
        log.error("the annotation store is damaged: %s", problem)
        controller.show_store_problem(problem, backup)
    return controller
