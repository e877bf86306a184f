"""File › Export: accepted masks as PNG, DICOM SEG, a de-identified training set, measurements CSV.

Exports read the accepted masks from the store (what the clinician signed off),
and run on the store's worker thread: the window keeps responding.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from PySide6.QtWidgets import QFileDialog, QMenu, QWidget

from tnseg_desktop.ui.background import Job, Worker

ExportDone = Callable[[str], None]


def export_pngs(store, study_id: int, out_dir: str) -> str:
    from tnseg_desktop.io.export_png import write_mask_pngs

    masks = store.accepted_masks(study_id)
    if not masks:
        return _NOTHING
    paths = write_mask_pngs(masks, out_dir)
    return f"Wrote {len(paths)} mask PNG(s) to {out_dir}."


def export_seg(store, study_id: int, source_path: str, out_path: str, algorithm_name: str | None) -> str:
    from tnseg_desktop.io.seg_writer import write_seg

    masks = store.accepted_masks(study_id)
    if not masks:
        return _NOTHING
    path = write_seg(source_path, masks, out_path, algorithm_name=algorithm_name)
    return f"Wrote a DICOM SEG of {len(masks)} frame(s) to {path}."


def export_training(store, study_id: int, out_dir: str) -> str:
    from tnseg_desktop.store.training_export import export_training_set

    result = export_training_set(store, out_dir, study_ids=[study_id])
    return " ".join(result.messages)


def export_measurements(store, study_id: int, out_path: str) -> str:
    from tnseg_desktop.store.export_measurements import export_measurements_csv

    if not store.accepted_frames(study_id=study_id):
        return _NOTHING
    path = export_measurements_csv(store, study_id, out_path)
    return f"Wrote the measurements to {path}."


_NOTHING = "No frame of this cine is accepted yet; accept frames with Enter, then export."


class ExportMenu(QMenu):
    """The menu; ``context()`` gives (store, study_id, source_path, is_dicom, model name) or None."""

    def __init__(self, parent: QWidget, worker: Worker, context: Callable[[], tuple | None],
                 done: ExportDone, failed: Callable[[BaseException], None]) -> None:
        super().__init__("&Export", parent)
        self.worker = worker
        self.context = context
        self.done = done
        self.failed = failed
        self.act_png = self.addAction("Accepted Masks as &PNG…", self.choose_png)
        self.act_seg = self.addAction("DICOM &SEG…", self.choose_seg)
        self.act_training = self.addAction("De-identified &Training Set…", self.choose_training)
        self.act_csv = self.addAction("&Measurements (CSV)…", self.choose_csv)
        self.aboutToShow.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        ctx = self.context()
        for a in (self.act_png, self.act_training, self.act_csv):
            a.setEnabled(ctx is not None)
        self.act_seg.setEnabled(ctx is not None and bool(ctx[3]))

    def _start_dir(self) -> str:
        ctx = self.context()
        return os.path.dirname(ctx[2]) if ctx else os.path.expanduser("~")

    # --- choosers (dialogs) then the work (background) -------------------------
    def choose_png(self) -> None:
        d = QFileDialog.getExistingDirectory(self.parentWidget(), "Export accepted masks as PNG", self._start_dir())
        if d:
            self.run_png(d)

    def default_seg_path(self) -> str | None:
        """The SEG file name offered: the study's number, not the source's file name, which often carries the
        patient's name or ID (the store's `export --format seg` uses the same name)."""
        ctx = self.context()
        return None if ctx is None else str(Path(self._start_dir()) / f"study{ctx[1]}_seg.dcm")

    def choose_seg(self) -> None:
        default = self.default_seg_path()
        if default is None:
            return
        p, _ = QFileDialog.getSaveFileName(self.parentWidget(), "Export DICOM SEG", default, "DICOM (*.dcm)")
        if p:
            self.run_seg(p)

    def choose_training(self) -> None:
        d = QFileDialog.getExistingDirectory(self.parentWidget(), "Export a de-identified training set", self._start_dir())
        if d:
            self.run_training(d)

    def choose_csv(self) -> None:
        p, _ = QFileDialog.getSaveFileName(self.parentWidget(), "Export measurements",
                                           str(Path(self._start_dir()) / "measurements.csv"), "CSV (*.csv)")
        if p:
            self.run_csv(p)

    def _run(self, name: str, fn: Callable[..., str], *args) -> Job | None:
        ctx = self.context()
        if ctx is None:
            return None
        store, study_id = ctx[0], ctx[1]
        return self.worker.submit(lambda job: fn(store, study_id, *args), self.done, self.failed, name=name)

    def run_png(self, out_dir: str) -> Job | None:
        return self._run("export png", export_pngs, out_dir)

    def run_seg(self, out_path: str) -> Job | None:
        ctx = self.context()
        if ctx is None:
            return None
        return self._run("export seg", export_seg, ctx[2], out_path, ctx[4])

    def run_training(self, out_dir: str) -> Job | None:
        return self._run("export training", export_training, out_dir)

    def run_csv(self, out_path: str) -> Job | None:
        return self._run("export csv", export_measurements, out_path)
