"""The editing controller's store side: study registration, accept, drafts (autosave), recovery and the close question."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Callable

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QMessageBox

from tnseg_desktop.engine.measurements import measure
from tnseg_desktop.engine.session import EditingSession, Origin
from tnseg_desktop.errors import UserFacingError
from tnseg_desktop.io.content_hash import Frames, content_hash
from tnseg_desktop.ui.background import Job, Worker
from tnseg_desktop.ui.editing_state import OpenSession, Reporter
from tnseg_desktop.ui.messages import user_message
from tnseg_desktop.ui.model_provider import LoadedModels
from tnseg_desktop.ui.store_banner import StoreProblemBanner

if TYPE_CHECKING:
    from tnseg_desktop.store import AnnotationStore, DraftAutosaver
    from tnseg_desktop.ui.main_window import MainWindow

log = logging.getLogger(__name__)

DRAFT_ORIGINS = (Origin.REFINED, Origin.PAINTED, Origin.PROPAGATED)


class StorePersistence:
    """The annotation store side of editing; every store write runs on the ``store`` worker. Owns the store
    in use (None when there is none or it proved unusable), the open cine's study and its draft autosaver.

    ``models`` gives the loaded models (their names go with each accepted mask); ``accepted`` is the
    controller's signal, emitted with the frame index once saved; ``after_accept``, when set, gets each saved
    record with the frame's pixels (the retraining views are made from them, ui/accept_views.py).
    """

    def __init__(self, window: MainWindow, current: OpenSession, store: AnnotationStore | None, provider: Any,
                 store_worker: Worker, banner: StoreProblemBanner, report: Reporter,
                 models: Callable[[], LoadedModels], accepted: Callable[[int], None]) -> None:
        self.window: MainWindow = window
        self.current: OpenSession = current
        self.store: AnnotationStore | None = store
        self.store_root: Any = getattr(store, "root", None)  # where a damaged store is restored
        self.provider: Any = provider  # follows the store in use (it reads the active model version there)
        self.store_worker: Worker = store_worker
        self.banner: StoreProblemBanner = banner
        self.report: Reporter = report
        self.models: Callable[[], LoadedModels] = models
        self.accepted: Callable[[int], None] = accepted
        self.study_id: int | None = None
        self.autosaver: DraftAutosaver | None = None
        self.close_question: QMessageBox | None = None
        self.after_accept: Callable[[Any, Any], None] | None = None
        self._drafted: set[int] = set()

    # --- the open cine -----------------------------------------------------------------------
    def begin_cine(self) -> None:
        """A new cine is open: no study or drafts until it is registered."""
        self._drafted = set()
        self.study_id, self.autosaver = None, None

    def end_cine(self) -> None:
        """The cine closes: its pending drafts are written."""
        if self.autosaver is not None:
            saver = self.autosaver
            self.store_worker.submit(lambda job: saver.flush(), None, self.report.failed, name="flush drafts")

    def register_open_study(self) -> None:
        """Register the open cine in the store (on the store thread) and show its saved masks again."""
        session, cine = self.current.session, self.window.cine
        if self.store is None or session is None or cine is None:
            return
        frames = session.source
        self.store_worker.submit(lambda job: self._register_study(session, frames, cine.meta),
                                 lambda saved: self._restore_saved(session, saved), self.report.failed,
                                 name="register study")

    def frame_changed(self, session: EditingSession, index: int, origin: Origin) -> None:
        """A frame's mask or origin changed: a draft is kept of edits not accepted, dropped when undone."""
        if self.autosaver is None:
            return
        if origin in DRAFT_ORIGINS:
            mask = session.mask(index)
            if mask is not None:
                self.autosaver.mark_dirty(index, mask, origin.value)
                self._drafted.add(index)
        elif index in self._drafted and origin is not Origin.ACCEPTED:
            self._drafted.discard(index)
            saver = self.autosaver
            self.store_worker.submit(lambda job: saver.discard(index), None, self.report.failed, name="discard draft")

    def clean_leftovers(self, models_dir=None) -> Job | None:
        """At start, on the store thread: remove what killed runs left behind (store/cleanup.py) and say so."""
        if self.store is None:
            return None
        from tnseg_desktop.store.cleanup import remove_leftovers

        store = self.store

        def done(report) -> None:
            if report.removed or report.failed:
                self.report.say(report.summary())

        return self.store_worker.submit(lambda job: remove_leftovers(store, models_dir), done, self.report.failed,
                                        name="clean leftovers")

    def _register_study(self, session: EditingSession, frames: Frames, meta) -> tuple[dict, dict]:
        """On the store thread: the study id, then its accepted masks and drafts to show again."""
        from tnseg_desktop.store import DraftAutosaver

        study_id = self.store.add_study(meta, content_hash(frames, meta))
        if session is self.current.session:
            self.study_id = study_id
            self.autosaver = DraftAutosaver(self.store, study_id)
        accepted = self.store.accepted_masks(study_id)
        drafts = {d.frame_index: (self.store.load_draft(study_id, d.frame_index), d.origin)
                  for d in self.store.drafts(study_id=study_id)}
        return accepted, drafts

    def _restore_saved(self, session: EditingSession, saved: tuple[dict, dict]) -> None:
        if session is not self.current.session:
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
            self.report.say(f"{len(drafts)} unaccepted draft frame(s) of this cine were restored.")

    def accept(self) -> Job | None:
        """Accept the frame on screen and save it in the store at once (on the store thread)."""
        index = self.current.frame_to_edit()
        if index is None:
            return None
        session = self.current.session
        assert session is not None
        before = session.view(index)
        session.accept(index)
        self._drafted.discard(index)
        mask = session.mask(index)
        info = self._edit_info(before)
        spacing = self.current.spacing()
        if self.store is None:
            self.report.say(f"Frame {index + 1} accepted (no annotation store is open, so it is not saved).")
            return None

        def save(job: Job):
            if self.autosaver is None or session is not self.current.session:
                raise UserFacingError("The annotation store was not ready; accept the frame again.")
            size = measure(self.current.views.confine(mask), spacing) if mask is not None else None
            edit_info = replace(info, measurements=size.to_dict() if size is not None else None)
            record = self.autosaver.accept(index, mask, original_mask=before.auto_mask, edit_info=edit_info)
            # read here, while the session's cine is surely open (a decode at worst, on this thread)
            return record, session.frame(index) if self.after_accept is not None else None

        def saved(result) -> None:
            record, frame = result
            self.report.say(f"Frame {index + 1} accepted and saved.")
            self.accepted(index)
            if frame is not None and self.after_accept is not None:
                self.after_accept(record, frame)

        return self.store_worker.submit(save, saved, self.report.failed, name="accept")

    def _edit_info(self, view):
        from tnseg_desktop.store import EditInfo

        prompts = view.prompts
        tool = {Origin.AUTO: "auto", Origin.PAINTED: "paint", Origin.PROPAGATED: "propagate",
                Origin.ACCEPTED: "accept", Origin.NONE: "empty"}.get(view.origin, "click")
        if view.origin is Origin.REFINED:
            tool = "text" if prompts.text else ("box" if prompts.box is not None and not prompts.clicks else "click")
        models = self.models()
        model = models.auto_name if view.origin is Origin.AUTO else models.refiner_name
        clicks = [{"x": c.col, "y": c.row, "positive": c.positive} for c in prompts.clicks]
        return EditInfo(tool=tool, prompt=prompts.text, clicks=clicks, model_name=model)

    def start_store_session(self, ask: bool) -> Job:
        """Recover what a crashed session left and start this one, on the store thread (queued before any
        other store job of this controller); the question whether to restore the drafts is asked here."""
        store = self.store

        def begin(job: Job):
            info = store.recover()
            store.start_session()
            if info is not None and not ask:
                store.finish_recovery(info, restore=True)
                return None
            return info

        def failed(exc: BaseException) -> None:  # damaged in a way the check at open did not see: viewing goes on
            if store is self.store:
                self._store_unusable(exc)

        def begun(info) -> None:
            if info is not None and store is self.store:
                QTimer.singleShot(0, lambda: offer(info))

        def offer(info) -> None:
            from tnseg_desktop.ui.recovery_dialog import ask_restore

            restore = ask_restore(info, self.window)

            def finished(_result) -> None:
                if restore and info.studies and self.window.cine is None:
                    import os

                    path = info.studies[0].source_path
                    if os.path.exists(path):
                        self.window.open_path(path)

            self.store_worker.submit(lambda job: store.finish_recovery(info, restore=restore), finished,
                                     self.report.failed, name="finish recovery")

        return self.store_worker.submit(begin, begun, failed, name="start store session")

    # --- a store that cannot be used ----------------------------------------------------------
    def show_store_problem(self, problem: str, backup) -> None:
        """The banner over the image: what is wrong with the store and, when there is one, the last good copy."""
        self.banner.show_problem(problem, backup)

    def _store_unusable(self, exc: BaseException) -> None:
        """The store failed in a way the check at open did not see: stop using it, say so, offer the backup."""
        from tnseg_desktop.store.backups import last_good_backup

        log.error("the annotation store cannot be used: %s", exc)
        store, self.store = self.store, None
        if getattr(self.provider, "store", None) is store:
            self.provider.store = None
        self.store_root = getattr(store, "root", self.store_root)
        try:
            store.close()
        except Exception:  # it is already unusable; closing is only tidying
            pass
        backup = last_good_backup(self.store_root) if self.store_root is not None else None
        self.show_store_problem(user_message(exc), backup)

    def restore_store(self) -> Job | None:
        """Put the last good backup in place (the damaged file is kept), then use the store again."""
        root = self.store_root
        if root is None or self.store is not None:
            return None

        def restore(job: Job):
            from tnseg_desktop.store import AnnotationStore

            restored = AnnotationStore.restore_last_good(root)
            return restored, AnnotationStore(root)

        def restored(result) -> None:
            info, store = result
            self.banner.clear()
            self.use_store(store)
            self.report.say(f"The annotation store was restored from {info.backup.name}; the damaged file is kept in "
                            f"{info.damaged_kept[0].parent if info.damaged_kept else 'damaged/'}.")

        def failed(exc: BaseException) -> None:
            self.window.report_error(exc, title="The annotation store could not be restored")

        return self.store_worker.submit(restore, restored, failed, name="restore store")

    def use_store(self, store) -> None:
        """Start saving to ``store`` (after a restore): a session, recovery, and the open cine registered."""
        self.store = store
        self.store_root = store.root
        if hasattr(self.provider, "store"):
            self.provider.store = store
        self.start_store_session(ask=True)
        if self.store is not None:
            self.register_open_study()

    def flush_drafts(self) -> Job | None:
        saver = self.autosaver
        if saver is None or not saver.pending:
            return None
        return self.store_worker.submit(lambda job: saver.flush(), None, self.report.failed, name="autosave")

    def unaccepted_frames(self) -> list[int]:
        session = self.current.session
        if session is None:
            return []
        return sorted(i for o in DRAFT_ORIGINS for i in session.frames_with(o))

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

    def export_context(self) -> tuple | None:
        """What File › Export needs: (store, study_id, source_path, is_dicom, model name), or None."""
        if self.store is None or self.study_id is None or self.window.meta is None:
            return None
        meta = self.window.meta
        return (self.store, self.study_id, meta.source_path, bool(meta.is_dicom), self.models().auto_name)
