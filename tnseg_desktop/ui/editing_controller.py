"""Binds the engine's EditingSession and the annotation store to the viewer window.

Threads: mouse and key handling, painting, undo/redo and drawing run on the GUI
thread (all light). Network passes (clicks, boxes, text, one frame's automatic
mask) run on the ``model`` worker, long jobs (segment all frames, propagate)
on the ``batch`` worker, and every store write (study registration, accept,
drafts, exports) on the ``store`` worker; the retraining views of each accepted frame on their own thread
(ui/accept_views.py), after the model work. The session's change notifications
come back through a Qt relay, so the window redraws on its own thread.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QApplication, QToolBar

from tnseg_desktop.engine.measurements import measure
from tnseg_desktop.engine.session import Change, EditingSession, Origin
from tnseg_desktop.engine.view_regions import Views, views_of
from tnseg_desktop.training.retrain import RetrainSettings
from tnseg_desktop.ui.accept_views import AcceptViews
from tnseg_desktop.ui.background import Deadline, Relay, Worker
from tnseg_desktop.ui.editing_actions import EditingActions
from tnseg_desktop.ui.editing_commands import EditingCommands
from tnseg_desktop.ui.editing_jobs import ModelJobs
from tnseg_desktop.ui.editing_panels import MaskDisplayControls
from tnseg_desktop.ui.editing_persistence import StorePersistence
from tnseg_desktop.ui.editing_state import OpenSession, Reporter
from tnseg_desktop.ui.export_menu import ExportMenu
from tnseg_desktop.ui.frame_state_strip import FrameStateStrip, state_for_origin
from tnseg_desktop.ui.mask_overlay import MaskOverlay
from tnseg_desktop.ui.measurement_overlay import MeasurementLines, MeasurementPanel, anchor_below
from tnseg_desktop.ui.missing_weights_banner import MissingWeightsBanner
from tnseg_desktop.ui.model_provider import LoadedModels, ModelProvider
from tnseg_desktop.ui.model_panel import ModelPanel
from tnseg_desktop.ui.prompt_markers import PromptMarkers
from tnseg_desktop.ui.store_banner import StoreProblemBanner
from tnseg_desktop.ui.text_prompt_field import TextPromptField
from tnseg_desktop.ui.tools import BoxTool, BrushCursor, BrushSize, BrushTool, ClickTool

if TYPE_CHECKING:
    from tnseg_desktop.ui.main_window import MainWindow

log = logging.getLogger(__name__)

AUTOSAVE_MS = 3000
# a model load or an embedding in progress cannot be interrupted; shutdown waits this long for it in all
SHUTDOWN_WAIT_S = 60.0


class _Frames:
    """The session's frame source: the viewer's decoded frame when it has one, else the cine."""

    def __init__(self, window: MainWindow, cine: Any) -> None:
        self.window: MainWindow = window
        self.cine: Any = cine

    def __len__(self) -> int:
        return len(self.cine)

    def frame(self, index: int) -> np.ndarray:
        if self.window.cine is self.cine:
            f = self.window.cached_frame(index)
            if f is not None:
                return f
        return self.cine.frame(index)


class EditingController(QObject, EditingCommands):
    """Everything the correction workflow adds to a :class:`MainWindow`.

    This module holds construction, the session's life and events, and drawing; the commands the tools and
    actions call are mixed in from :class:`EditingCommands` (ui/editing_commands.py). The controller owns
    one object per concern and hands each what it uses: :class:`OpenSession` and :class:`Reporter` (what they
    share, ui/editing_state.py), :class:`EditingActions` (actions and menus, ui/editing_actions.py),
    :class:`ModelJobs` (model loading and jobs, ui/editing_jobs.py) and :class:`StorePersistence` (the store
    side: accept, drafts, recovery, closing; ui/editing_persistence.py).
    """

    models_ready = Signal()
    accepted = Signal(int)  # frame index, once saved in the store
    job_finished = Signal(str)  # "segment all", "propagate", ...
    message = Signal(str)  # sentences shown in the status bar

    def __init__(self, window: MainWindow, provider: Any = None, store: Any = None, ask_recovery: bool = True,
                 autosave_ms: int = AUTOSAVE_MS) -> None:
        super().__init__(window)
        self.window: MainWindow = window
        self.canvas = window.canvas
        self.provider: Any = provider if provider is not None else ModelProvider(store=store)
        self.report = Reporter(window, self.message.emit)
        self.current = OpenSession(window, self.report)
        self._unsubscribe: Callable[[], None] | None = None
        self._refresh_pending = False
        self._shut = False

        self.model_worker = Worker("model", self)
        self.batch_worker = Worker("batch", self)
        self.store_worker = Worker("store", self)
        self.relay = Relay(self)
        self.relay.fired.connect(self._on_relay)

        self._build_canvas_layers()
        self._build_widgets()
        self.persistence = StorePersistence(window, self.current, store, self.provider, self.store_worker,
                                            self.store_banner, self.report, lambda: self.jobs.models,
                                            self.accepted.emit)
        self.store_banner.restore_requested.connect(self.persistence.restore_store)
        self.jobs = ModelJobs(window, self.current, self.provider, lambda: self.persistence.store, self.model_panel,
                              self.banner, self.text_field, self.model_worker, self.batch_worker, self.relay,
                              self.report, self._schedule_refresh, self.models_ready.emit, self.job_finished.emit)
        # the retraining's settings (the panel shares them): how many views of each accepted frame, at which precision
        self.retrain_settings = RetrainSettings()
        self.accept_views = AcceptViews(lambda: self.retrain_settings, self._model_work_pending)
        self.persistence.after_accept = self._write_accept_views
        self.actions = EditingActions(window, self, self.brush_size, self.text_field, self.mask_controls)
        self.export_menu = ExportMenu(window, self.store_worker, self.persistence.export_context, self.report.say,
                                      self.report.failed)
        self.actions.add_menus(self.export_menu)
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

        if store is not None:
            self.persistence.start_store_session(ask_recovery)
        self.load_models()

    # --- state owned by the parts ----------------------------------------------------------
    @property
    def session(self) -> EditingSession | None:
        """The open cine's session (None while no cine is open)."""
        return self.current.session

    @property
    def views(self) -> Views:
        return self.current.views

    @property
    def models(self) -> LoadedModels:
        return self.jobs.models

    @property
    def precompute(self) -> Any:
        return self.jobs.precompute

    @property
    def busy(self) -> bool:
        return self.jobs.busy

    @property
    def store(self) -> Any:
        """The annotation store in use (None when there is none, or it proved unusable)."""
        return self.persistence.store

    @store.setter
    def store(self, store: Any) -> None:
        self.persistence.store = store

    @property
    def store_root(self) -> Any:
        return self.persistence.store_root

    @store_root.setter
    def store_root(self, root: Any) -> None:
        self.persistence.store_root = root

    @property
    def study_id(self) -> int | None:
        return self.persistence.study_id

    @property
    def last_error(self) -> BaseException | None:
        return self.report.last_error

    @property
    def toolbar(self) -> QToolBar:
        return self.actions.toolbar

    @property
    def act_accept(self) -> QAction:
        return self.actions.act_accept

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
        self.current.views = views_of(cine.meta)
        auto, refiner = self.jobs.session_models()
        session = EditingSession(frames, refiner=refiner, auto_model=auto)
        session.set_clip_predictor(self.jobs.models.clip)
        self.current.session = session
        relay = self.relay
        self._unsubscribe = session.subscribe(lambda i, ch: relay.send("session", (session, i, ch)))
        self.strip.set_count(len(session))
        self.persistence.begin_cine()
        self.jobs.restart_precompute()
        self.actions.sync_history(session)
        self._schedule_refresh()
        self.persistence.register_open_study()

    def _end_session(self) -> None:
        self.cancel_job()
        self.jobs.retire_precompute()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.persistence.end_cine()
        self.current.session = None
        self.jobs.forget_verdicts()
        self.actions.sync_history(None)

    # --- session events (GUI thread) ---------------------------------------------------------
    def _on_relay(self, kind: str, payload: Any) -> None:
        if kind == "session":
            session, index, change = payload
            if session is self.current.session:
                self._on_session_change(session, index, change)
        elif kind == "progress":
            self.jobs.job_progress(*payload)
        elif kind == "embed":
            self.jobs.embedding_progress(*payload)

    def _on_session_change(self, session: EditingSession, index: int | None, change: Change) -> None:
        self.actions.sync_history(session)
        if index is None:
            return
        origin = session.origin(index)
        if origin is Origin.AUTO:
            self.jobs.forget_verdict(index)
        self.strip.set_state(index, state_for_origin(origin.value))
        self.persistence.frame_changed(session, index, origin)
        if index == self.window.displayed_index:
            self._schedule_refresh()

    def _on_frame_displayed(self, index: int) -> None:
        self.strip.set_current(index)
        if self.jobs.precompute is not None:
            self.jobs.precompute.set_current(index)
        self._refresh_now()

    def _schedule_refresh(self) -> None:
        # many changes in one event-loop turn (a stroke, a batch of masks) draw once
        if not self._refresh_pending:
            self._refresh_pending = True
            QTimer.singleShot(0, self._refresh_now)

    def _refresh_now(self) -> None:
        self._refresh_pending = False
        index = self.window.displayed_index
        session = self.current.session
        if session is None or index < 0 or index >= len(session):
            self.overlay.set_mask(None)
            self.markers.set_prompts([], None)
            self.lines.show(None)
            self.measurement_panel.show_measurement(None, None)
            return
        view = session.view(index)
        if self.window.is_playing:
            # while the loop plays only the fill follows each frame; outline, markers and sizes come on pause
            self.overlay.set_mask(view.mask, outline=False)
            self.markers.set_prompts([], None)
            self.lines.show(None)
            return
        self.overlay.set_mask(view.mask)
        self.markers.set_prompts([(c.row, c.col, c.positive) for c in view.prompts.clicks], view.prompts.box)
        # sizes are of one view: a mask painted across two views is measured in the view holding most of it
        m = measure(self.current.views.confine(view.mask), self.current.spacing()) if view.mask is not None else None
        warning = self.jobs.out_of_range(index) if m is not None and view.origin is Origin.AUTO else None
        self.lines.show(m, warning, anchor_below(view.mask) if warning else None)
        self.measurement_panel.show_measurement(m, index, warning=warning)

    # --- the retraining views of accepted frames ------------------------------------------------
    def _model_work_pending(self) -> bool:
        """Clicks, boxes, segmenting and the embedding precompute come before the retraining views (any thread)."""
        pre = self.jobs.precompute
        return self.jobs.busy or (pre is not None and pre.running)

    def _write_accept_views(self, record: Any, frame: np.ndarray) -> None:
        store = self.persistence.store
        if store is not None and not self._shut:
            self.accept_views.submit(store, record, frame, self.jobs.models.refiner)

    # --- closing ------------------------------------------------------------------------------
    def shutdown(self, timeout: float = SHUTDOWN_WAIT_S) -> None:
        """Stop background work, join its threads and close the store cleanly (idempotent).

        A daemon thread still inside torch when the interpreter exits aborts the process, so every thread
        started here is joined: queued model and batch jobs are dropped, the ones in progress are asked to
        cancel and waited for (at most ``timeout`` in all); queued store writes still run.
        """
        if self._shut:
            return
        self._shut = True
        self._autosave_timer.stop()
        self._end_session()
        deadline = Deadline(timeout)
        for w in (self.model_worker, self.batch_worker):
            w.stop(0.0, drop_pending=True)  # everything winds down at once; joined below
        self.accept_views.shutdown(deadline.left())  # before the store closes: it reads the accepted masks there
        left = [] if self.jobs.join_retired_precomputes(deadline.left()) else ["embedding precompute"]
        left += ["accept views"] if self.accept_views.running else []
        for w in (self.model_worker, self.batch_worker, self.store_worker):
            if not w.stop(deadline.left()):
                left.append(f"{w.name} worker")
        if left:
            log.warning("background work still running after %.0f s at shutdown: %s", timeout, ", ".join(left))
        store = self.persistence.store
        if store is not None:
            try:
                store.close()
            except Exception as exc:
                log.warning("closing the annotation store failed: %s", exc)


def attach_editing(window: MainWindow, **kwargs: Any) -> EditingController:
    """Add the correction workflow to ``window`` (see :class:`EditingController` for the options)."""
    controller = EditingController(window, **kwargs)
    window.editing = controller
    return controller


def attach_editing_for_app(window: MainWindow, with_store: bool = True, provider: Any = None) -> EditingController:
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

        controller.persistence.clean_leftovers(paths.user_models_dir())
    if problem is not None:
        log.error("the annotation store is damaged: %s", problem)
        controller.persistence.show_store_problem(problem, backup)
    return controller
