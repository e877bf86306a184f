"""The editing controller's model work: loading models, embedding precompute, and the model and batch jobs."""

from __future__ import annotations

from typing import Any, Callable

from tnseg_desktop.engine.session import EditingSession
from tnseg_desktop.ui.background import Job
from tnseg_desktop.ui.model_provider import LoadedModels


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
    """Mixed into :class:`~tnseg_desktop.ui.editing_controller.EditingController`: loads models and runs
    network passes on the ``model`` worker and long jobs (segment all, propagate) on the ``batch`` worker."""

    def load_models(self, auto: str | None = None, refiner: str | None = None) -> Job:
        """Load (or switch) models in the background; the banner and panel follow.

        This is also how a new or rolled-back model version reaches the open session: the provider decides
        which model plays each role, keeping the models other than tnseg-lite that are already loaded.
        """
        provider, current, store = self.provider, self.models, getattr(self, "store", None)
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

        self.model_panel.set_device("loading models…")
        return self.model_worker.submit(work, self._models_loaded, self._job_failed, name="load models")

    def _models_loaded(self, result) -> None:
        loaded, missing, autos, refiners, version, model_range = result
        self.models = loaded
        self.model_range = model_range  # the automatic model's own range (models/<name>.range.json), if it ships one
        self.model_panel.set_models(autos, loaded.auto_name, refiners, loaded.refiner_name)
        self.model_panel.set_device(loaded.device_text)
        self.model_panel.set_version(None if loaded.version_unusable else version)
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
        auto, refiner = self.session_models()
        session.set_auto_model(auto)
        session.set_refiner(refiner)
        session.set_clip_predictor(self.models.clip)
        self._restart_precompute()

    def _retire_precompute(self) -> None:
        """Cancel the embedding precompute without waiting for the frame in progress."""
        if self.precompute is not None:
            self.precompute.cancel(wait=False)
            self._retired_precomputes = [p for p in self._retired_precomputes if p.running] + [self.precompute]
            self.precompute = None

    def _join_retired_precomputes(self) -> None:
        """At shutdown: an embedding thread is a daemon inside torch; left running, interpreter exit aborts."""
        for pre in self._retired_precomputes:
            pre.cancel(wait=True, timeout=10.0)
        self._retired_precomputes.clear()

    def _restart_precompute(self) -> None:
        self._retire_precompute()
        refiner, session = self.models.refiner, self.session
        if session is None or refiner is None or not getattr(refiner, "needs_embedding", False):
            self.model_panel.set_embedding_progress(0, 0)
            return
        from tnseg_desktop.engine.precompute import Precompute

        relay = self.relay
        pre = Precompute(session.source, refiner, current=max(0, self.window.displayed_index),
                         on_progress=lambda i, done, total: relay.send("embed", (pre, done, total)))
        self.precompute = pre.start()
        self.model_panel.set_embedding_progress(0, pre.count)

    def _model_job(self, name: str, fn: Callable[[EditingSession, int], Any]) -> Job | None:
        index = self._frame()
        if index is None:
            return None
        session = self.session
        assert session is not None
        return self.model_worker.submit(lambda job: fn(session, index), None, self._job_failed, name=name)

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
            done = session.auto_mask_range(order, progress=lambda d, t: relay.send("progress", (job, d, t)),
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
