"""The editing controller's model work: loading models, embedding precompute, the model and batch jobs, and
the out-of-range check of automatic masks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from tnseg_desktop.engine.out_of_range import ModelRange
from tnseg_desktop.engine.session import EditingSession
from tnseg_desktop.engine.view_regions import confine_models
from tnseg_desktop.ui.background import Deadline, Job, Relay, Worker
from tnseg_desktop.ui.editing_state import OpenSession, Reporter
from tnseg_desktop.ui.missing_weights_banner import MissingWeightsBanner
from tnseg_desktop.ui.model_panel import ModelPanel
from tnseg_desktop.ui.model_provider import LoadedModels
from tnseg_desktop.ui.text_prompt_field import TextPromptField

if TYPE_CHECKING:
    from tnseg_desktop.engine.precompute import Precompute
    from tnseg_desktop.store import AnnotationStore
    from tnseg_desktop.ui.main_window import MainWindow


def _leave_a_core_for_the_window() -> None:
    """Model passes use all cores but one, so the GUI thread always finds a free core."""
    import torch

    from tnseg_desktop.model.device import threads_leaving_a_core

    torch.set_num_threads(threads_leaving_a_core())


def _active_version_name(store: Any) -> str | None:
    try:
        version = store.active_model_version() if store is not None else None
    except Exception:  # a store that cannot be read only loses the version label
        return None
    return version.name if version is not None else None


def nearest_first(n: int, current: int) -> list[int]:
    return sorted(range(n), key=lambda i: (abs(i - current), i < current))


class ModelJobs:
    """Loads models and runs network passes on the ``model`` worker and long jobs (segment all, propagate)
    on the ``batch`` worker; owns the loaded models, the embedding precompute and the out-of-range verdicts.

    ``current_store`` gives the annotation store in use (it can change: a restore, a store found damaged);
    ``refresh``, ``models_ready`` and ``job_finished`` are the controller's redraw and its two signals.
    """

    def __init__(self, window: MainWindow, current: OpenSession, provider: Any,
                 current_store: Callable[[], AnnotationStore | None], panel: ModelPanel,
                 banner: MissingWeightsBanner, text_field: TextPromptField, model_worker: Worker,
                 batch_worker: Worker, relay: Relay, report: Reporter, refresh: Callable[[], None],
                 models_ready: Callable[[], None], job_finished: Callable[[str], None]) -> None:
        self.window: MainWindow = window
        self.current: OpenSession = current
        self.provider: Any = provider
        self.current_store: Callable[[], AnnotationStore | None] = current_store
        self.panel: ModelPanel = panel
        self.banner: MissingWeightsBanner = banner
        self.text_field: TextPromptField = text_field
        self.model_worker: Worker = model_worker
        self.batch_worker: Worker = batch_worker
        self.relay: Relay = relay
        self.report: Reporter = report
        self.refresh: Callable[[], None] = refresh
        self.models_ready: Callable[[], None] = models_ready
        self.job_finished: Callable[[str], None] = job_finished

        self.models = LoadedModels()
        self.chosen_auto: str | None = None  # the automatic model the user picked (None: the provider's default)
        self.model_range: ModelRange | None = None  # judges the automatic model's masks (set when models load)
        self.precompute: Precompute | None = None
        self._retired_precomputes: list[Precompute] = []  # cancelled, maybe still finishing a frame; joined at shutdown
        self._batch_job: Job | None = None
        self._verdicts: dict[int, str | None] = {}  # frame -> out-of-range sentence of its automatic mask
        self._verdicts_pending: set[int] = set()

    @property
    def batch_job(self) -> Job | None:
        """The running segment-all or propagation job (one at a time), or None."""
        return self._batch_job

    @property
    def busy(self) -> bool:
        return self.model_worker.busy or self.batch_worker.busy

    # --- models ------------------------------------------------------------------------------
    def load_models(self, auto: str | None = None, refiner: str | None = None) -> Job:
        """Load (or switch) models in the background; the banner and panel follow.

        This is also how a new or rolled-back model version reaches the open session: the provider decides
        which model plays each role, keeping the models other than tnseg-lite that are already loaded.
        """
        provider, current, store = self.provider, self.models, self.current_store()
        if auto is not None:
            self.chosen_auto = auto  # the user's pick in the Model panel holds until they pick another
        # otherwise the provider's default: after a retraining that is the retrained tnseg-lite
        auto = self.chosen_auto
        refiner = refiner or current.refiner_name

        def work(job: Job) -> tuple[LoadedModels, list, list[str], list[str], str | None, Any]:
            _leave_a_core_for_the_window()
            from tnseg_desktop.engine.out_of_range import load_range

            loaded = provider.load(auto, refiner, reuse=current)
            judge = load_range(loaded.auto_name) if loaded.auto_name else None
            return (loaded, provider.missing(), provider.auto_names(), provider.refiner_names(),
                    _active_version_name(store), judge)

        self.panel.set_device("loading models…")
        return self.model_worker.submit(work, self._models_loaded, self.report.failed, name="load models")

    def _models_loaded(self, result) -> None:
        loaded, missing, autos, refiners, version, model_range = result
        self.models = loaded
        self.model_range = model_range  # the automatic model's own range (models/<name>.range.json), if it ships one
        self.panel.set_models(autos, loaded.auto_name, refiners, loaded.refiner_name)
        self.panel.set_device(loaded.device_text)
        self.panel.set_version(None if loaded.version_unusable else version)
        self.window.device_label.setText(f"Compute: {loaded.device_text}")
        self.banner.set_missing(missing)
        self.text_field.edit.setPlaceholderText(
            "Describe the target, e.g. nodule" if loaded.clip is not None else "Text prompts need CLIP-TNseg weights")
        for p in loaded.problems or []:
            self.report.say(p)
        if self.current.session is not None:
            self._install_models(self.current.session)
        self.models_ready()

    def session_models(self) -> tuple[Any, Any]:
        """The loaded models as the open cine's session uses them: answers kept within one view of the frame."""
        self._verdicts.clear()
        return confine_models(self.models.auto, self.models.refiner, self.current.views)

    def _install_models(self, session: EditingSession) -> None:
        auto, refiner = self.session_models()
        session.set_auto_model(auto)
        session.set_refiner(refiner)
        session.set_clip_predictor(self.models.clip)
        self.restart_precompute()

    # --- the out-of-range check of automatic masks -----------------------------------------------
    def out_of_range(self, index: int) -> str | None:
        """The out-of-range sentence for the automatic mask on frame ``index``; judged once, on the model worker
        (None until then: a redraw follows the verdict)."""
        session = self.current.session
        if session is None or self.model_range is None or session.auto_model is None:
            return None
        if index in self._verdicts:
            return self._verdicts[index]
        if index not in self._verdicts_pending:
            self._verdicts_pending.add(index)
            model_range, model = self.model_range, session.auto_model

            def judge(job: Job) -> str | None:
                frame = session.frame(index)
                from tnseg_desktop.engine.sam_polish import probs_for_range_check

                return model_range.verdict(probs_for_range_check(model, [frame])[0], frame)

            def judged(verdict: str | None) -> None:
                self._verdicts_pending.discard(index)
                if session is self.current.session:
                    self._verdicts[index] = verdict
                    if index == self.window.displayed_index:
                        self.refresh()

            def failed(exc: BaseException) -> None:  # a frame that cannot be judged is shown without a verdict
                self._verdicts_pending.discard(index)

            self.model_worker.submit(judge, judged, failed, name="range check")
        return None

    def forget_verdict(self, index: int) -> None:
        """A new automatic mask on ``index`` is judged anew."""
        self._verdicts.pop(index, None)

    def forget_verdicts(self) -> None:
        self._verdicts.clear()

    # --- embedding precompute -------------------------------------------------------------------
    def retire_precompute(self) -> None:
        """Cancel the embedding precompute without waiting for the frame in progress."""
        if self.precompute is not None:
            self.precompute.cancel(wait=False)
            self._retired_precomputes = [p for p in self._retired_precomputes if p.running] + [self.precompute]
            self.precompute = None

    def join_retired_precomputes(self, timeout: float = 10.0) -> bool:
        """At shutdown: an embedding thread is a daemon inside torch; left running, interpreter exit aborts.

        Waits at most ``timeout`` in all; True when none is left running.
        """
        deadline = Deadline(timeout)
        for pre in self._retired_precomputes:
            pre.cancel(wait=True, timeout=deadline.left())
        self._retired_precomputes = [p for p in self._retired_precomputes if p.running]
        return not self._retired_precomputes

    def restart_precompute(self) -> None:
        self.retire_precompute()
        refiner, session = self.models.refiner, self.current.session
        if session is None or refiner is None or not getattr(refiner, "needs_embedding", False):
            self.panel.set_embedding_progress(0, 0)
            return
        from tnseg_desktop.engine.precompute import Precompute

        relay = self.relay
        pre = Precompute(session.source, refiner, current=max(0, self.window.displayed_index),
                         on_progress=lambda i, done, total: relay.send("embed", (pre, done, total)))
        self.precompute = pre.start()
        self.panel.set_embedding_progress(0, pre.count)

    def embedding_progress(self, pre: Precompute, done: int, total: int) -> None:
        if pre is self.precompute:
            self.panel.set_embedding_progress(done, total)

    # --- jobs ----------------------------------------------------------------------------------
    def model_job(self, name: str, fn: Callable[[EditingSession, int], Any]) -> Job | None:
        """``fn(session, frame on screen)`` on the model worker; None when no frame is open."""
        index = self.current.frame_to_edit()
        if index is None:
            return None
        session = self.current.session
        assert session is not None
        return self.model_worker.submit(lambda job: fn(session, index), None, self.report.failed, name=name)

    def segment_frame(self) -> Job | None:
        if self.models.auto is None:
            self.report.say("No segmentation model is installed; paint the mask with the brush instead.")
            return None
        return self.model_job("segment frame", lambda s, i: s.auto_mask(i))

    def segment_all(self) -> Job | None:
        """Automatic masks for every frame, nearest to the one on screen first; cancellable."""
        session = self.current.session
        if session is None or self.models.auto is None:
            self.report.say("No segmentation model is installed; paint the mask with the brush instead."
                            if session is not None else "Open a cine first.")
            return None
        if self._batch_job is not None:
            return None
        relay = self.relay
        order = nearest_first(len(session), max(0, self.window.displayed_index))
        holder: dict[str, Job] = {}

        def work(job: Job) -> str:
            done = session.auto_mask_range(order, progress=lambda d, t: relay.send("progress", (job, d, t)),
                                           should_stop=lambda: job.cancelled, batch_size=2)
            return f"Segmented {len(done)} of {len(order)} frames" + (" (cancelled)." if job.cancelled else ".")

        job = self.batch_worker.submit(work, lambda text: self._batch_done(holder["job"], text),
                                       lambda exc: self._batch_failed(holder["job"], exc), name="segment all")
        holder["job"] = job
        self._batch_job = job
        self.panel.job_started("Segmenting all frames…", len(order))
        return job

    def propagate(self, direction: int) -> Job | None:
        index = self.current.frame_to_edit()
        if index is None or self._batch_job is not None:
            return None
        if self.models.refiner is None:
            self.report.say("Propagation needs a refiner model (none is installed).")
            return None
        session, relay = self.current.session, self.relay
        assert session is not None
        holder: dict[str, Job] = {}

        def work(job: Job) -> str:
            from tnseg_desktop.engine.propagation import propagate

            res = propagate(session, index, direction, progress=lambda d, t: relay.send("progress", (job, d, t)),
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
        self.panel.job_started("Propagating " + ("forward…" if direction > 0 else "backward…"), total)
        return job

    def job_progress(self, job: Job, done: int, total: int) -> None:
        if job is self._batch_job:
            self.panel.job_progress(done, total)

    def _batch_done(self, job: Job, text: str) -> None:
        if job is self._batch_job:
            self._batch_job = None
            self.panel.job_finished(text)
        self.report.say(text)
        self.job_finished(job.name)

    def _batch_failed(self, job: Job, exc: BaseException) -> None:
        if job is self._batch_job:
            self._batch_job = None
            self.panel.job_finished("")
        self.report.failed(exc)
        self.job_finished(job.name)

    def cancel_job(self) -> None:
        if self._batch_job is not None:
            self._batch_job.cancel()
            self.panel.job_label.setText("Cancelling…")
