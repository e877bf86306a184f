"""The "Retrain on my edits" panel: start the worker process, follow its progress, cancel, show the verdict.

The worker runs as a separate OS process under QProcess; its JSON lines arrive
through the event loop, so the window stays fully usable while it trains. A
crash of the worker is reported here and nowhere else. Everything that reads
or writes the store (counting the new frames, which hashes the weights in use;
recording the run and its result) runs on a store worker thread, never on the
GUI thread; only the final record at quit waits for it.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any, Callable

from PySide6.QtCore import QProcess, QProcessEnvironment, Qt, QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from tnseg_desktop.store import AnnotationStore, TrainingRun
from tnseg_desktop.training import retrain
from tnseg_desktop.training.job import Job
from tnseg_desktop.ui.background import Worker
from tnseg_desktop.ui.messages import user_message

if TYPE_CHECKING:
    from tnseg_desktop.ui.main_window import MainWindow

log = logging.getLogger(__name__)

KILL_AFTER_MS = 15000  # a worker that ignores SIGTERM this long is killed


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}"


def describe_plan(plan: retrain.RetrainPlan) -> str:
    if not plan.ready:
        return plan.reason
    return (f"{retrain.count_text(plan.n_new, 'new accepted frame')} since {plan.base_name} ({len(plan.new_train)} to train on, "
            f"{len(plan.new_val)} held aside to check the result). About {plan.estimated_minutes:.0f} min.")


def describe_progress(event: dict[str, Any]) -> str:
    part = event.get("part")
    if part == "decoder-embeddings":
        parts = [f"Box tool: encoding frame {event.get('step', 0)} of {event.get('of', '?')}"]
    elif part == "decoder":
        parts = [f"Box tool: step {event.get('step', 0)}"]
    else:
        parts = [f"Step {event.get('step', 0)}"]
    if event.get("loss") is not None:
        parts.append(f"loss {event['loss']:.3f}")
    eta = event.get("eta_s")
    if eta is not None:
        parts.append(f"about {eta / 60:.1f} min left" if eta >= 60 else f"about {eta:.0f} s left")
    if event.get("val_dice") is not None:
        parts.append(f"check Dice {_pct(event['val_dice'])}")
    return " · ".join(parts)


def describe_result(result: retrain.RetrainResult) -> str:
    d = result.decision
    if d is None:
        return result.message
    counts = result.version.data_counts if result.version else {}
    lines = [f"Your held-out frames ({counts.get('val_user', '?')}): Dice {_pct(d.user_before)} → {_pct(d.user_after)}"]
    if d.base_before is not None:
        lines.append(f"Base validation set ({counts.get('val_base', '?')}): Dice {_pct(d.base_before)} → {_pct(d.base_after)}")
    else:
        lines.append("Base validation set: not checked (no base data installed; see TNSEG_REPLAY_DATA in the README).")
    name = result.version.name if result.version else "The new model"
    if d.promote:
        lines.append(f"{name} is now in use; earlier versions stay in Training › Model Versions.")
    else:
        lines.append(f"{name} was kept but is not used: {d.reason}")
    b = result.decoder_decision
    if b is not None:
        lines.append(f"Box tool on your held-out frames: Dice {_pct(b.user_before)} → {_pct(b.user_after)}"
                     + (f"; base validation {_pct(b.base_before)} → {_pct(b.base_after)}" if b.base_before is not None else ""))
    if result.decoder_message:
        lines.append(result.decoder_message)
    return "\n".join(lines)


class RetrainPanel(QWidget):
    """Button, counts, progress with Cancel, and the before/after comparison of the last run."""

    started = Signal(str)  # name the new version will get
    progressed = Signal(dict)  # every worker event
    finished = Signal(str, str)  # status ("promoted", "rejected", "cancelled", "failed"), message
    version_promoted = Signal(str)

    def __init__(self, store: AnnotationStore | Callable[[], AnnotationStore], settings: retrain.RetrainSettings | None = None,
                 extra_env: dict[str, str] | None = None, parent: QWidget | None = None, worker: Worker | None = None) -> None:
        super().__init__(parent)
        self._store_source = store
        # the editing window's store worker when there is one, so that store writes keep one order
        self._own_worker = worker is None
        self.worker = worker if worker is not None else Worker("retrain-store", self)
        self._state = "idle"  # "starting" (run being recorded), "running" (process), "finishing" (result being recorded)
        self._planning = False
        self.settings = settings or retrain.RetrainSettings()
        self.extra_env = dict(extra_env or {})
        self.process: QProcess | None = None
        self.plan: retrain.RetrainPlan | None = None
        self.last_result: retrain.RetrainResult | None = None
        self._run: TrainingRun | None = None
        self._job: Job | None = None
        self._job_path = ""
        self._events: list[dict[str, Any]] = []
        self._buffer = b""
        self._cancel_requested = False

        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.button = QPushButton("Retrain on my edits")
        self.button.clicked.connect(self.start)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.comparison = QLabel("")
        self.comparison.setWordWrap(True)
        self.comparison.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        row = QHBoxLayout()
        row.addWidget(self.progress, 1)
        row.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.button)
        layout.addLayout(row)
        layout.addWidget(self.status)
        layout.addWidget(self.comparison)
        layout.addStretch(1)
        self._set_running(False)

        self._refresh_timer = QTimer(self)
        self._refresh_timer.timeout.connect(self.refresh)
        self._refresh_timer.start(10000)
        self.refresh()

    # --- state ---------------------------------------------------------------------
    @property
    def store(self) -> AnnotationStore:
        return self._store_source if isinstance(self._store_source, AnnotationStore) else self._store_source()

    def is_running(self) -> bool:
        """A run is being started, trained or recorded."""
        return self._state != "idle"

    def _set_running(self, running: bool) -> None:
        self.progress.setVisible(running)
        self.cancel_button.setVisible(running)
        self.cancel_button.setEnabled(running)
        if running:
            self.button.setEnabled(False)

    def refresh(self) -> None:
        """Re-count the new accepted frames on the store worker; the button is enabled only when a run can start."""
        if self.is_running() or self._planning or (self.plan is not None and not self.isVisible()):
            return
        self._planning = True

        def planned(plan: retrain.RetrainPlan) -> None:
            self._planning = False
            self.plan = plan
            self._show_plan(describe_plan(plan), plan.ready)

        def failed(exc: BaseException) -> None:  # a locked store must not break the panel
            self._planning = False
            self._show_plan(user_message(exc, "The accepted frames could not be counted"), False)

        self.worker.submit(lambda job: retrain.plan_retrain(self.store, self.settings), planned, failed, name="count new frames")

    def _show_plan(self, text: str, ready: bool) -> None:
        if self.is_running():
            return
        self.summary.setText(text)
        self.button.setEnabled(ready)
        self.button.setToolTip("" if ready else text)

    # --- running ---------------------------------------------------------------------
    def start(self) -> bool:
        """Start a run: the plan and the run's record are made on the store worker, then the worker process starts.

        False (with the reason shown) when a run is going or the last count says one cannot start; a reason
        found on the store worker (the frames changed, the store is locked) is shown when it comes back.
        """
        if self.is_running():
            return False
        if self.plan is not None and not self.plan.ready:
            self.summary.setText(self.plan.reason)
            return False
        self._state = "starting"
        self._events, self._buffer, self._cancel_requested = [], b"", False
        self.progress.setValue(0)
        self.status.setText("Starting the training process…")
        self.comparison.setText("")
        self._set_running(True)

        def prepare(job: Any) -> tuple[retrain.RetrainPlan, tuple[TrainingRun, Job, Any] | None]:
            store = self.store
            plan = retrain.plan_retrain(store, self.settings)
            return plan, (retrain.start_run(store, plan, self.settings) if plan.ready else None)

        self.worker.submit(prepare, self._launch, self._start_failed, name="start retraining")
        return True

    def _start_failed(self, exc: BaseException) -> None:
        self._state = "idle"
        self._set_running(False)
        self.status.setText(user_message(exc, "Retraining could not start"))
        self.button.setEnabled(self.plan is not None and self.plan.ready)

    def _launch(self, prepared: tuple[retrain.RetrainPlan, tuple[TrainingRun, Job, Any] | None]) -> None:
        plan, started = prepared
        self.plan = plan
        if started is None:
            self._state = "idle"
            self._set_running(False)
            self.status.setText("")
            self._show_plan(plan.reason, False)
            return
        self._run, self._job, self._job_path = started
        proc = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        for k, v in self.extra_env.items():
            env.insert(k, v)
        proc.setProcessEnvironment(env)
        proc.setStandardErrorFile(self._run.log_path, QProcess.OpenModeFlag.Append)
        proc.readyReadStandardOutput.connect(self._read_output)
        proc.finished.connect(self._on_finished)
        proc.errorOccurred.connect(self._on_process_error)
        self.process = proc
        self._state = "running"
        cmd = retrain.worker_command(self._job_path)
        proc.start(cmd[0], cmd[1:])
        self.started.emit(self._job.output_name)
        if self._cancel_requested:  # Cancel was pressed while the run was being recorded
            self._stop_process()

    def cancel(self) -> None:
        """SIGTERM: the worker stops at the next step and writes nothing."""
        if self._state not in ("starting", "running"):
            return
        self._cancel_requested = True
        self.cancel_button.setEnabled(False)
        self.status.setText("Cancelling…")
        if self.process is not None:
            self._stop_process()

    def _stop_process(self) -> None:
        proc = self.process
        retrain.request_stop(self._job_path, proc.terminate)
        QTimer.singleShot(KILL_AFTER_MS, lambda: proc.kill() if self.process is proc else None)

    def _read_output(self) -> None:
        if self.process is None:
            return
        self._buffer += bytes(self.process.readAllStandardOutput())
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            event = retrain.parse_line(line)
            if event is not None:
                self._on_event(event)

    def _on_event(self, event: dict[str, Any]) -> None:
        self._events.append(event)
        kind = event.get("event")
        if kind == "start" and self._run is not None:
            run = self._run
            # the run still finishes when this fails; only its lock is then held by this app's pid alone
            self.worker.submit(lambda job: retrain.note_worker_started(self.store, run, event), None,
                               lambda exc: log.warning("recording the worker's pid failed: %s", exc), name="note worker pid")
        if kind in ("step", "val"):
            elapsed, eta = event.get("elapsed_s"), event.get("eta_s")
            if elapsed is not None and eta is not None and elapsed + eta > 0:
                self.progress.setValue(int(1000 * elapsed / (elapsed + eta)))
            if kind == "step" or not self.status.text().startswith("Step"):
                self.status.setText(describe_progress(event))
        elif kind == "phase":
            labels = {"evaluating-base": "Checking the current model…", "training": "Training…",
                      "evaluating": "Checking the new model…", "saving": "Saving the new model…",
                      "decoder-embeddings": "Encoding your frames for the box tool…",
                      "decoder-evaluating-base": "Checking the current box tool…",
                      "decoder-training": "Training the box tool…", "decoder-evaluating": "Checking the new box tool…"}
            self.status.setText(labels.get(event.get("phase"), ""))
        elif kind == "data" and event.get("skipped"):
            self.status.setText(f"{len(event['skipped'])} frame(s) could not be read and are left out.")
        self.progressed.emit(event)

    def _on_process_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._complete(127)

    def _on_finished(self, exit_code: int, exit_status: QProcess.ExitStatus) -> None:
        self._read_output()
        crashed = exit_status == QProcess.ExitStatus.CrashExit
        self._complete(-1 if crashed and exit_code == 0 else exit_code)

    def _complete(self, exit_code: int, wait: bool = False) -> None:
        """Record the finished worker's result on the store worker (``wait``: here and now, at quit)."""
        proc, self.process = self.process, None
        if proc is None or self._run is None or self._job is None:
            return
        proc.deleteLater()
        tail = self._buffer
        if tail.strip():
            event = retrain.parse_line(tail)
            if event is not None:
                self._events.append(event)
        outcome = retrain.WorkerOutcome(exit_code, list(self._events))
        run, job, cancelled = self._run, self._job, self._cancel_requested
        self._state = "finishing"

        def record(_job: Any) -> retrain.RetrainResult:
            return retrain.finish_run(self.store, run, job, outcome, cancelled, self.settings)

        if not wait:
            self.worker.submit(record, self._recorded, self._record_failed, name="record training run")
            return
        try:
            result = record(None)
        except Exception as exc:
            self._record_failed(exc)
            return
        self._recorded(result)

    def _record_failed(self, exc: BaseException) -> None:
        log.warning("recording the training run failed: %s", exc)
        self._state = "idle"
        self.status.setText(user_message(exc, "The training result could not be recorded"))
        self._set_running(False)
        self.finished.emit("failed", self.status.text())

    def _recorded(self, result: retrain.RetrainResult) -> None:
        self._state = "idle"
        self.last_result = result
        self._set_running(False)
        text = {"promoted": "Finished: the new model is in use.", "rejected": "Finished: the new model was not better.",
                "cancelled": "Cancelled.", "failed": "Training failed."}[result.status]
        if result.decoder_version is not None:
            text += " The new box tool is in use." if result.decoder_promoted else " The new box tool was not better."
        self.status.setText(text)
        self.comparison.setText(describe_result(result))
        if result.status in ("failed", "cancelled") and self.plan is not None:
            self._show_plan(describe_plan(self.plan), self.plan.ready)  # nothing was used up: the count stands
        self.refresh()
        promoted = [v.name for v, ok in ((result.version, result.status == "promoted"),
                                         (result.decoder_version, result.decoder_promoted)) if v is not None and ok]
        if promoted:
            self.version_promoted.emit(" and ".join(promoted))
        self.finished.emit(result.status, result.message)

    def shutdown(self, wait_ms: int = 5000) -> None:
        """On quit: cancel a running worker and record the run as cancelled (waiting for that record)."""
        self._refresh_timer.stop()
        proc = self.process
        if proc is not None:
            self._cancel_requested = True
            retrain.request_stop(self._job_path, proc.terminate)
            if not proc.waitForFinished(wait_ms):
                proc.kill()
                proc.waitForFinished(2000)
            if self.process is proc:
                self._complete(proc.exitCode(), wait=True)
        if self._own_worker:
            self.worker.stop()


# --- the window hook: a Training menu, the two panels as docks, the new version reloaded -----------------


def install_training_ui(window: MainWindow) -> None:
    """Add Training › Retrain on My Edits… / Model Versions… to ``window``; the panels open as docks.

    When the window has an editing controller (``window.editing``, read at each use: it is attached after
    the window is built), the panels share its store and store worker and a new version reloads its models.
    """
    from PySide6.QtGui import QAction
    from PySide6.QtWidgets import QApplication, QDockWidget

    from tnseg_desktop.ui.model_versions_panel import ModelVersionsPanel

    own: dict[str, Any] = {}  # a store and a store worker made here when the window has no editing controller
    own_lock = threading.Lock()  # the retraining panel asks from its store worker, the versions panel from the GUI

    def store() -> AnnotationStore:
        shared = window.editing.store if window.editing is not None else None
        if shared is not None:
            return shared
        with own_lock:
            if "store" not in own:
                own["store"] = AnnotationStore()
            return own["store"]

    def store_worker() -> Worker:
        """The editing controller's store worker (one order for all store jobs), else the panels' own."""
        if window.editing is not None:
            return window.editing.store_worker
        if "worker" not in own:
            own["worker"] = Worker("training-store", window)
        return own["worker"]

    docks: dict[str, QDockWidget] = {}

    def versions_changed() -> None:
        if "versions" in docks:
            docks["versions"].widget().refresh()

    def on_version(name: str) -> None:
        """A version was promoted or chosen: the editing controller reloads its models, which picks it up."""
        controller = window.editing
        if controller is None:  # a viewer without editing has no model to swap
            window.statusBar().showMessage(f"Now using model {name}.", 8000)
            versions_changed()
            return
        window.statusBar().showMessage(f"Loading model {name}…", 8000)

        def loaded() -> None:
            controller.models_ready.disconnect(loaded)
            if not controller.models.version_unusable:  # otherwise the controller has said what is wrong
                window.statusBar().showMessage(f"Now using model {name}.", 8000)
            versions_changed()

        controller.models_ready.connect(loaded)
        controller.load_models()

    def dock(key: str) -> QDockWidget:
        if key not in docks:
            if key == "retrain":
                # the editing controller's settings: the views it writes at accept are the ones a run will use
                settings = window.editing.retrain_settings if window.editing is not None else None
                panel: QWidget = RetrainPanel(store, settings, worker=store_worker())
                panel.version_promoted.connect(on_version)
                app = QApplication.instance()
                if app is not None:
                    app.aboutToQuit.connect(panel.shutdown)
                title = "Retrain on My Edits"
            else:
                panel = ModelVersionsPanel(store, worker=store_worker())
                panel.version_activated.connect(on_version)
                title = "Model Versions"
            panel.setMinimumWidth(300 if key == "retrain" else 360)
            d = QDockWidget(title, window)
            d.setObjectName(f"dock-{key}")
            d.setWidget(panel)
            window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, d)
            docks[key] = d
        return docks[key]

    def show(key: str) -> None:
        d = dock(key)
        d.show()
        d.raise_()
        d.widget().refresh()

    def close_own() -> None:
        if "worker" in own:
            own["worker"].stop()
        if "store" in own:
            own["store"].close()

    window.destroyed.connect(lambda *_: close_own())
    window.training_docks = docks
    window.show_training_panel = show
    act_retrain = QAction("&Retrain on My Edits…", window)
    act_retrain.triggered.connect(lambda: show("retrain"))
    act_versions = QAction("Model &Versions…", window)
    act_versions.triggered.connect(lambda: show("versions"))
    bar = window.menuBar()
    help_action = next((a for a in bar.actions() if a.text().replace("&", "") == "Help"), None)
    menu = bar.addMenu("&Training") if help_action is None else None
    if menu is None:
        from PySide6.QtWidgets import QMenu

        menu = QMenu("&Training", bar)
        bar.insertMenu(help_action, menu)
    menu.addAction(act_retrain)
    menu.addAction(act_versions)
    window.training_menu = menu
