"""The annotation store: studies, frames, masks (model original and user final), edits and drafts.

Layout of a store folder (``paths.store_dir()`` unless given)::

    annotations.sqlite3 (+ -wal, -shm)   tables in store/schema.py
    masks/ab/<sha256>.png                mask pixels, 0/255, frame resolution

Write order for every mask: the PNG is written and fsynced first, then the row
naming it is committed. A crash at any point leaves either no row (and perhaps
an unreferenced file) or a row whose file is complete.
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from tnseg_desktop import paths
from tnseg_desktop.io.types import CineMeta
from tnseg_desktop.store import backups
from tnseg_desktop.store import edits_and_drafts as ed
from tnseg_desktop.store import model_versions as mv
from tnseg_desktop.store import sessions
from tnseg_desktop.store import training_runs as tr
from tnseg_desktop.store.connection import Database
from tnseg_desktop.store.errors import StoreError, StoreLockedError, UnknownRecordError
from tnseg_desktop.store.maskfiles import MaskFiles, as_binary_mask
from tnseg_desktop.store.records import (
    AcceptedFrame,
    DraftRecord,
    EditInfo,
    ModelVersion,
    RecoveryInfo,
    StudyRecord,
    TrainingRun,
    os_user_name,
    utc_now,
)
from tnseg_desktop.store.schema import SCHEMA_VERSION, migrate

log = logging.getLogger(__name__)

DB_NAME = "annotations.sqlite3"
# identifying fields of CineMeta that the store has no use for and so does not keep
_META_NOT_KEPT = ("patient_name", "patient_id")


class AnnotationStore:
    """Thread-safe handle on one store folder; several processes may open the same folder."""

    def __init__(self, path: str | Path | None = None, *, busy_timeout_s: float = 10.0) -> None:
        """Open (or, in a folder that never held one, create) a store.

        A missing or empty database where a store was raises :class:`StoreDamagedError`; one that fails
        ``PRAGMA quick_check`` opens read-only with ``problem`` set (every write then refuses).
        """
        self.root = Path(path) if path is not None else paths.store_dir()
        self.root.mkdir(parents=True, exist_ok=True)
        self.db_path = self.root / DB_NAME
        self.problem: str | None = None  # one sentence when the store is damaged and open read-only
        self.backup_offer: Path | None = None
        self.last_backup: Path | None = None
        self._refuse_lost_database()
        self.db = self._open_checked(busy_timeout_s)
        self.migrated_from = SCHEMA_VERSION
        if self.problem is None:
            try:
                self.migrated_from = migrate(self.db.conn, str(self.db_path))
            except sqlite3.Error as exc:
                self.db.close()
                raise self.db.translate(exc) from exc
        self.files = MaskFiles(self.root)
        self.session_id: int | None = None
        if self.problem is None:
            self._ensure_salt()
            backups.write_marker(self.root)
            tr.fail_abandoned_runs(self.db)

    @property
    def read_only(self) -> bool:
        return self.problem is not None

    @staticmethod
    def restore_last_good(path: str | Path | None = None, backup: str | Path | None = None) -> backups.Restored:
        """Replace a damaged or missing database by its newest good backup (or ``backup``); refuses a healthy one."""
        root = Path(path) if path is not None else paths.store_dir()
        db = root / DB_NAME
        if db.is_file() and db.stat().st_size > 0:
            try:
                probe = AnnotationStore(root)
            except backups.StoreDamagedError:
                pass
            else:
                healthy = probe.problem is None
                probe.close()
                if healthy:
                    raise StoreError("the annotation store is not damaged, so it was left as it is "
                                     "(restoring a backup would throw away the work since then).", str(db))
        return backups.restore_backup(root, DB_NAME, Path(backup) if backup is not None else None)

    def _refuse_lost_database(self) -> None:
        """A database that is gone or empty where a store was must not be silently replaced by a new one."""
        size = self.db_path.stat().st_size if self.db_path.exists() else None
        if size:
            return
        signs = backups.signs_of_a_store(self.root)
        if not signs:
            return  # a new store
        what = "is missing" if size is None else "is empty (0 bytes)"
        message, backup = backups.damage_message(
            f"The annotation store's database {what} although this folder held a store ({', '.join(signs)}), "
            "so no new one was made", self.root, read_only=False)
        raise backups.StoreDamagedError(message, str(self.db_path), backup)

    def _open_checked(self, busy_timeout_s: float) -> Database:
        existed = self.db_path.exists()
        problem: str | None = None
        try:
            db = Database(self.db_path, busy_timeout_s)
        except StoreLockedError:
            raise
        except StoreError as exc:
            problem = exc.message.rstrip(".")
        else:
            if not existed:
                return db
            found = backups.quick_check(db.conn)
            if found is None:
                return db
            db.close()
            problem = f"The annotation store's database fails its integrity check ({found})"
        try:
            db = Database(self.db_path, busy_timeout_s, read_only_reason="its database is damaged")
            db.query("SELECT COUNT(*) FROM sqlite_master")
        except StoreError:
            message, backup = backups.damage_message(problem + " and cannot be read at all", self.root, read_only=False)
            raise backups.StoreDamagedError(message, str(self.db_path), backup) from None
        self.problem, self.backup_offer = backups.damage_message(problem, self.root, read_only=True)
        return db

    # ----------------------------------------------------------------- lifecycle
    def __enter__(self) -> "AnnotationStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the store; an open session is marked as ended cleanly, and a store written to is backed up."""
        if self.session_id is not None:
            sessions.end_session(self.db, self.session_id)
            self.session_id = None
        if self.db.wrote and self.problem is None:
            try:
                with self.db._lock:
                    self.last_backup = backups.make_backup(self.db.conn, self.root)
            except (sqlite3.Error, OSError) as exc:  # a failed backup must not lose the close; the next one retries
                log.warning("backing up the annotation store failed: %s", exc)
        self.db.close()

    def start_session(self) -> int:
        """Mark this app run as open; call recover() first to see what a crash left behind."""
        if self.session_id is None:
            self.session_id = sessions.start_session(self.db)
        return self.session_id

    def end_session(self) -> None:
        if self.session_id is not None:
            sessions.end_session(self.db, self.session_id)
            self.session_id = None

    def _ensure_salt(self) -> None:
        if self.db.query_one("SELECT 1 FROM meta WHERE key = 'deid_salt'") is None:
            with self.db.write() as c:
                c.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('deid_salt', ?)", (secrets.token_hex(32),))
                c.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('created_at', ?)", (utc_now(),))

    @property
    def deid_salt(self) -> str:
        """Per-store secret used to turn identifiers into salted hashes in training exports."""
        row = self.db.query_one("SELECT value FROM meta WHERE key = 'deid_salt'")
        assert row is not None
        return str(row[0])

    # ------------------------------------------------------------------- studies
    def add_study(self, meta: CineMeta, content_hash: str, sop_instance_uids: Iterable[str] | None = None) -> int:
        """Register a loaded cine (idempotent on content_hash: the same pixels give the same study id)."""
        if not content_hash:
            raise StoreError("A study needs the content hash of its source.", meta.source_path)
        uids = list(sop_instance_uids) if sop_instance_uids is not None else (
            [meta.sop_instance_uid] if meta.sop_instance_uid else [])
        kept = {k: v for k, v in meta.to_dict().items() if k not in _META_NOT_KEPT}
        with self.db.write() as c:
            row = c.execute("SELECT id FROM studies WHERE content_hash = ?", (content_hash,)).fetchone()
            if row is not None:
                # the same loop opened from another place: remember where it is now
                c.execute("UPDATE studies SET source_path = ?, meta_json = ? WHERE id = ?",
                          (str(meta.source_path), json.dumps(kept), row[0]))
                return int(row[0])
            cur = c.execute(
                """INSERT INTO studies (source_path, content_hash, study_instance_uid, series_instance_uid,
                   sop_instance_uids, n_frames, rows, cols, meta_json, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)""",
                (str(meta.source_path), content_hash, meta.study_instance_uid, meta.series_instance_uid,
                 json.dumps(uids), int(meta.frames), int(meta.rows), int(meta.cols), json.dumps(kept), utc_now()),
            )
            return int(cur.lastrowid)

    def study(self, study_id: int) -> StudyRecord:
        row = self.db.query_one("SELECT * FROM studies WHERE id = ?", (int(study_id),))
        if row is None:
            raise UnknownRecordError(f"The annotation store has no study {study_id}.")
        return _row_to_study(row)

    def studies(self) -> list[StudyRecord]:
        return [_row_to_study(r) for r in self.db.query("SELECT * FROM studies ORDER BY id")]

    def find_study(self, ref: str) -> StudyRecord:
        """A study by id, content hash (or a unique prefix of at least 8 characters) or SOP Instance UID."""
        ref = str(ref).strip()
        if ref.isdigit():
            row = self.db.query_one("SELECT * FROM studies WHERE id = ?", (int(ref),))
            if row is not None:
                return _row_to_study(row)
        rows = self.db.query("SELECT * FROM studies WHERE content_hash = ?", (ref,))
        if not rows and len(ref) >= 8:
            rows = self.db.query("SELECT * FROM studies WHERE substr(content_hash, 1, ?) = ?", (len(ref), ref))
        if not rows:
            rows = [r for r in self.db.query("SELECT * FROM studies") if ref in json.loads(r["sop_instance_uids"])]
        if len(rows) != 1:
            what = "no study" if not rows else "several studies"
            raise UnknownRecordError(f"The annotation store has {what} matching '{ref}' (use the id from 'store info').")
        return _row_to_study(rows[0])

    def _check_mask(self, study: StudyRecord, frame_index: int, mask: np.ndarray, what: str) -> np.ndarray:
        if not 0 <= int(frame_index) < study.n_frames:
            raise StoreError(f"Frame {frame_index} is outside the study's {study.n_frames} frames.", study.source_path)
        binary = as_binary_mask(mask)
        if binary.shape != (study.rows, study.cols):
            raise StoreError(
                f"The {what} mask is {binary.shape[1]}x{binary.shape[0]} but the frames are "
                f"{study.cols}x{study.rows}; masks are kept at frame resolution.",
                study.source_path,
            )
        return binary

    # -------------------------------------------------------------------- accept
    def accept(
        self,
        study_id: int,
        frame_index: int,
        mask: np.ndarray,
        original_mask: np.ndarray | None = None,
        edit_info: EditInfo | None = None,
    ) -> AcceptedFrame:
        """Save an accepted mask now (durable when this returns) with the model's original and provenance."""
        study = self.study(study_id)
        final = self._check_mask(study, frame_index, mask, "accepted")
        original = self._check_mask(study, frame_index, original_mask, "original") if original_mask is not None else None
        info = edit_info or EditInfo()
        final_put = self.files.put(final)
        orig_put = self.files.put(original) if original is not None else None
        return ed.record_accepted(self.db, study, int(frame_index), final_put, orig_put, info,
                                  info.os_user or os_user_name(), utc_now(), self.session_id)

    def accepted_frames(
        self,
        since_version: str | None = None,
        *,
        since_edit_id: int | None = None,
        study_id: int | None = None,
    ) -> list[AcceptedFrame]:
        """The latest accepted mask of every frame, optionally only those accepted after a model version's data."""
        cutoff = since_edit_id or 0
        if since_version is not None:
            cutoff = max(cutoff, mv.get_model_version(self.db, since_version).last_edit_id or 0)
        return ed.latest_accepted(self.db, cutoff, study_id)

    def edit_history(self, study_id: int, frame_index: int) -> list[AcceptedFrame]:
        """Every accepted edit of one frame, oldest first."""
        return ed.edit_history(self.db, study_id, frame_index)

    def last_edit_id(self) -> int:
        row = self.db.query_one("SELECT MAX(id) FROM edits")
        return int(row[0] or 0) if row else 0

    def load_mask(self, mask_id: int) -> np.ndarray:
        """A stored mask (bool HxW), checked against its recorded checksum."""
        row = self.db.query_one("SELECT file, sha256 FROM masks WHERE id = ?", (int(mask_id),))
        if row is None:
            raise UnknownRecordError(f"The annotation store has no mask {mask_id}.")
        return self.files.get(row["file"], row["sha256"])

    def load_accepted(self, study_id: int, frame_index: int) -> np.ndarray | None:
        """The latest accepted mask of a frame, or None when the frame has none."""
        hist = self.accepted_frames(study_id=study_id)
        for a in hist:
            if a.frame_index == int(frame_index):
                return self.load_mask(a.final_mask_id)
        return None

    def accepted_masks(self, study_id: int) -> dict[int, np.ndarray]:
        """frame index -> latest accepted mask for one study."""
        return {a.frame_index: self.load_mask(a.final_mask_id) for a in self.accepted_frames(study_id=study_id)}

    # -------------------------------------------------------------------- drafts
    def save_draft(self, study_id: int, frame_index: int, mask: np.ndarray, origin: str = "edit") -> None:
        """Keep an unaccepted mask so a crash does not lose it (the autosaver calls this every few seconds)."""
        study = self.study(study_id)
        binary = self._check_mask(study, frame_index, mask, "draft")
        rel, sha, _ = self.files.put(binary)
        ed.put_draft(self.db, study.id, int(frame_index), (rel, sha), origin, utc_now(), self.session_id)

    def drafts(self, study_id: int | None = None, session_id: int | None = None) -> list[DraftRecord]:
        return ed.list_drafts(self.db, study_id, session_id)

    def load_draft(self, study_id: int, frame_index: int) -> np.ndarray | None:
        found = ed.draft_file(self.db, study_id, frame_index)
        return self.files.get(*found) if found else None

    def discard_draft(self, study_id: int, frame_index: int) -> None:
        ed.delete_draft(self.db, study_id, frame_index)

    # ------------------------------------------------------------------ recovery
    def recover(self) -> RecoveryInfo | None:
        """The newest session that crashed (not closed cleanly, process gone) with its drafts, or None."""
        crashed = sessions.crashed_sessions(self.db, self.session_id)
        if not crashed:
            return None
        s = crashed[0]
        ids = [r["id"] for r in crashed]
        marks = ",".join("?" * len(ids))
        drafts = [d for d in self.drafts() if d.session_id in ids or d.session_id is None]
        n_acc = self.db.query_one(f"SELECT COUNT(*) FROM edits WHERE session_id IN ({marks})", tuple(ids))
        study_ids = sorted({d.study_id for d in drafts})
        return RecoveryInfo(
            session_id=int(s["id"]), started_at=s["started_at"], host=s["host"], os_user=s["os_user"],
            drafts=drafts, studies=[self.study(i) for i in study_ids], accepted_in_session=int(n_acc[0]) if n_acc else 0,
        )

    def finish_recovery(self, info: RecoveryInfo, restore: bool) -> None:
        """After the user chose: keep the drafts (they join this session) or discard them."""
        crashed_ids = [r["id"] for r in sessions.crashed_sessions(self.db, self.session_id)]
        ed.adopt_or_drop_drafts(self.db, info.drafts, self.session_id, restore)
        sessions.mark_recovered(self.db, crashed_ids)

    # ------------------------------------------------------------ model versions
    def record_model_version(self, name: str, **kwargs: Any) -> ModelVersion:
        """Record a trained model (file, sha256, parent, metrics, data_counts, last_edit_id, status)."""
        return mv.record_model_version(self.db, name, **kwargs)

    def list_model_versions(self, role: str | None = None) -> list[ModelVersion]:
        return mv.list_model_versions(self.db, role)

    def model_version(self, name: str) -> ModelVersion:
        return mv.get_model_version(self.db, name)

    def active_model_version(self, role: str = "auto") -> ModelVersion | None:
        """The version in use for ``role`` ("auto": the automatic-mask network; "decoder": LiteMedSAM's decoder)."""
        return mv.active_model_version(self.db, role)

    def set_active_version(self, name: str) -> ModelVersion:
        return mv.set_active_version(self.db, name)

    def version_using_file(self, path: str | Path) -> ModelVersion | None:
        """The active model version (of any role) whose weights are ``path``, or None (checked before a model file is removed)."""
        target = Path(path).resolve()
        for role in mv.ROLES:
            active = self.active_model_version(role)
            if active is not None and active.file and Path(active.file).resolve() == target:
                return active
        return None

    def set_version_status(self, name: str, status: str) -> ModelVersion:
        return mv.set_version_status(self.db, name, status)

    def record_training_run(self, **kwargs: Any) -> TrainingRun:
        """Record a run as it starts (base_version, job, n_edits, last_edit_id, log_path)."""
        return tr.record_training_run(self.db, **kwargs)

    def finish_training_run(self, run_id: int, status: str, **kwargs: Any) -> TrainingRun:
        return tr.finish_training_run(self.db, run_id, status, **kwargs)

    def list_training_runs(self) -> list[TrainingRun]:
        return tr.list_training_runs(self.db)

    def set_training_run_worker(self, run_id: int, pid: int) -> None:
        tr.set_worker_pid(self.db, run_id, pid)

    def running_training_run(self) -> TrainingRun | None:
        return tr.running_run(self.db)

    # ---------------------------------------------------------------- upkeep
    def integrity_check(self) -> str:
        return str(self.db.query_one("PRAGMA integrity_check")[0])  # type: ignore[index]

    def referenced_files(self) -> set[str]:
        rows = self.db.query("SELECT file FROM masks UNION SELECT file FROM drafts")
        return {r[0] for r in rows}

    def info(self) -> dict[str, Any]:
        count = lambda sql: int(self.db.query_one(sql)[0])  # noqa: E731
        active = self.active_model_version()
        decoder = self.active_model_version("decoder")
        return {
            "path": str(self.root),
            "database": str(self.db_path),
            "schema_version": SCHEMA_VERSION,
            "studies": count("SELECT COUNT(*) FROM studies"),
            "accepted_frames": count("SELECT COUNT(DISTINCT frame_id) FROM edits"),
            "edits": count("SELECT COUNT(*) FROM edits"),
            "drafts": count("SELECT COUNT(*) FROM drafts"),
            "model_versions": count("SELECT COUNT(*) FROM model_versions"),
            "active_model_version": active.name if active else None,
            "active_decoder_version": decoder.name if decoder else None,
            "training_runs": count("SELECT COUNT(*) FROM training_runs"),
            "unclean_sessions": len(sessions.crashed_sessions(self.db, self.session_id)),
            "study_list": [
                {"id": s.id, "source_path": s.source_path, "frames": s.n_frames,
                 "accepted": len(self.accepted_frames(study_id=s.id)), "content_hash": s.content_hash[:16]}
                for s in self.studies()
            ],
        }


def _row_to_study(r: sqlite3.Row) -> StudyRecord:
    return StudyRecord(
        id=r["id"], source_path=r["source_path"], content_hash=r["content_hash"],
        study_instance_uid=r["study_instance_uid"], series_instance_uid=r["series_instance_uid"],
        sop_instance_uids=json.loads(r["sop_instance_uids"]), n_frames=r["n_frames"], rows=r["rows"],
        cols=r["cols"], meta=json.loads(r["meta_json"]), created_at=r["created_at"],
    )


def active_version_refusal(path: str | Path, store_path: str | Path | None = None) -> str | None:
    """Why ``path`` must not be deleted (it is the store's active model version), or None.

    Passed as ``in_use`` to the registry's remove: the file stays until the user switches to another version.
    """
    root = Path(store_path) if store_path is not None else paths.store_dir()
    if not (root / DB_NAME).is_file():
        return None  # no store, so no version is in use
    try:
        with AnnotationStore(root) as store:
            active = store.version_using_file(path)
    except StoreError as exc:
        return f"the annotation store could not be checked for the model in use ({exc.message.rstrip('.')}), so the file was kept."
    if active is None:
        return None
    return (f"'{active.name}' is the model in use (the annotation store's active version); switch to another version "
            "in Training › Model Versions first, then remove it.")
