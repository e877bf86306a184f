"""The rows behind each frame's masks: accepted edits (with their mask rows) and unaccepted drafts.

Functions over a :class:`Database`, called by :class:`AnnotationStore`, which
checks the masks and writes their PNG files before any row here names them.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from tnseg_desktop.store.connection import Database
from tnseg_desktop.store.records import AcceptedFrame, DraftRecord, EditInfo, StudyRecord

_ACCEPTED_COLUMNS = "e.*, f.study_id, f.frame_index, m.area_px, s.source_path"


def record_accepted(
    db: Database,
    study: StudyRecord,
    frame_index: int,
    final: tuple[str, str, int],
    original: tuple[str, str, int] | None,
    info: EditInfo,
    user: str,
    now: str,
    session_id: int | None,
) -> AcceptedFrame:
    """One accepted edit in one transaction: its mask rows and edit row, and the frame's draft gone.

    ``final`` and ``original`` are what ``MaskFiles.put`` returned for files already written.
    """
    final_file, final_sha, area = final
    measurements_json = json.dumps(info.measurements) if info.measurements is not None else None
    with db.write() as c:
        frame_id = _frame_id(c, study, frame_index)
        orig_id = None
        if original is not None:
            orig_id = c.execute(
                "INSERT INTO masks (frame_id, kind, file, sha256, area_px, created_at) VALUES (?,?,?,?,?,?)",
                (frame_id, "original", original[0], original[1], original[2], now),
            ).lastrowid
        final_id = c.execute(
            "INSERT INTO masks (frame_id, kind, file, sha256, area_px, created_at) VALUES (?,?,?,?,?,?)",
            (frame_id, "final", final_file, final_sha, area, now),
        ).lastrowid
        edit_id = c.execute(
            """INSERT INTO edits (frame_id, original_mask_id, final_mask_id, tool, prompt, clicks_json,
               model_name, model_version, os_user, created_at, session_id, measurements_json)
               VALUES (?,?,?,?,?,?,?,?,?,?,?,?)""",
            (frame_id, orig_id, final_id, info.tool, info.prompt, json.dumps(list(info.clicks)),
             info.model_name, info.model_version, user, now, session_id, measurements_json),
        ).lastrowid
        c.execute("DELETE FROM drafts WHERE study_id = ? AND frame_index = ?", (study.id, frame_index))
    return AcceptedFrame(
        edit_id=int(edit_id), study_id=study.id, frame_index=frame_index, final_mask_id=int(final_id),
        original_mask_id=int(orig_id) if orig_id is not None else None, area_px=area, tool=info.tool,
        prompt=info.prompt, clicks=list(info.clicks), model_name=info.model_name,
        model_version=info.model_version, os_user=user, created_at=now, source_path=study.source_path,
        measurements=json.loads(measurements_json) if measurements_json is not None else None,
    )


def latest_accepted(db: Database, after_edit_id: int, study_id: int | None = None) -> list[AcceptedFrame]:
    """The latest accepted edit of every frame whose latest edit is newer than ``after_edit_id``."""
    sql = f"""SELECT {_ACCEPTED_COLUMNS} FROM edits e
              JOIN (SELECT frame_id, MAX(id) AS last FROM edits GROUP BY frame_id) l ON l.last = e.id
              JOIN frames f ON f.id = e.frame_id JOIN studies s ON s.id = f.study_id
              JOIN masks m ON m.id = e.final_mask_id WHERE e.id > ?"""
    params: list[Any] = [after_edit_id]
    if study_id is not None:
        sql += " AND f.study_id = ?"
        params.append(int(study_id))
    rows = db.query(sql + " ORDER BY f.study_id, f.frame_index", tuple(params))
    return [_row_to_accepted(r) for r in rows]


def edit_history(db: Database, study_id: int, frame_index: int) -> list[AcceptedFrame]:
    rows = db.query(
        f"""SELECT {_ACCEPTED_COLUMNS} FROM edits e
            JOIN frames f ON f.id = e.frame_id JOIN studies s ON s.id = f.study_id
            JOIN masks m ON m.id = e.final_mask_id WHERE f.study_id = ? AND f.frame_index = ? ORDER BY e.id""",
        (int(study_id), int(frame_index)),
    )
    return [_row_to_accepted(r) for r in rows]


def put_draft(db: Database, study_id: int, frame_index: int, file: tuple[str, str], origin: str,
              now: str, session_id: int | None) -> None:
    """Insert or replace the draft of one frame; ``file`` is (path, sha256) of a mask file already written."""
    with db.write() as c:
        c.execute(
            """INSERT INTO drafts (study_id, frame_index, file, sha256, origin, updated_at, session_id)
               VALUES (?,?,?,?,?,?,?) ON CONFLICT (study_id, frame_index) DO UPDATE SET
               file = excluded.file, sha256 = excluded.sha256, origin = excluded.origin,
               updated_at = excluded.updated_at, session_id = excluded.session_id""",
            (study_id, frame_index, file[0], file[1], origin, now, session_id),
        )


def list_drafts(db: Database, study_id: int | None = None, session_id: int | None = None) -> list[DraftRecord]:
    sql = "SELECT d.*, s.source_path FROM drafts d JOIN studies s ON s.id = d.study_id WHERE 1 = 1"
    params: list[Any] = []
    if study_id is not None:
        sql += " AND d.study_id = ?"
        params.append(int(study_id))
    if session_id is not None:
        sql += " AND d.session_id = ?"
        params.append(int(session_id))
    return [_row_to_draft(r) for r in db.query(sql + " ORDER BY d.study_id, d.frame_index", tuple(params))]


def draft_file(db: Database, study_id: int, frame_index: int) -> tuple[str, str] | None:
    """(path, sha256) of one frame's draft mask file, or None when the frame has no draft."""
    row = db.query_one("SELECT file, sha256 FROM drafts WHERE study_id = ? AND frame_index = ?",
                       (int(study_id), int(frame_index)))
    return (row["file"], row["sha256"]) if row else None


def delete_draft(db: Database, study_id: int, frame_index: int) -> None:
    with db.write() as c:
        c.execute("DELETE FROM drafts WHERE study_id = ? AND frame_index = ?", (int(study_id), int(frame_index)))


def adopt_or_drop_drafts(db: Database, drafts: list[DraftRecord], session_id: int | None, adopt: bool) -> None:
    """Drafts a crashed session left: moved into ``session_id`` (adopt) or deleted, unless replaced meanwhile."""
    with db.write() as c:
        for d in drafts:
            if adopt:
                c.execute("UPDATE drafts SET session_id = ? WHERE study_id = ? AND frame_index = ?",
                          (session_id, d.study_id, d.frame_index))
            else:
                c.execute("DELETE FROM drafts WHERE study_id = ? AND frame_index = ? AND sha256 = ?",
                          (d.study_id, d.frame_index, d.sha256))


def _frame_id(c: sqlite3.Connection, study: StudyRecord, frame_index: int) -> int:
    sop = study.sop_instance_uids[frame_index] if len(study.sop_instance_uids) == study.n_frames > 1 else (
        study.sop_instance_uids[0] if study.sop_instance_uids else "")
    c.execute("INSERT OR IGNORE INTO frames (study_id, frame_index, sop_instance_uid) VALUES (?,?,?)",
              (study.id, frame_index, sop))
    return int(c.execute("SELECT id FROM frames WHERE study_id = ? AND frame_index = ?",
                         (study.id, frame_index)).fetchone()[0])


def _row_to_accepted(r: sqlite3.Row) -> AcceptedFrame:
    return AcceptedFrame(
        edit_id=r["id"], study_id=r["study_id"], frame_index=r["frame_index"], final_mask_id=r["final_mask_id"],
        original_mask_id=r["original_mask_id"], area_px=r["area_px"], tool=r["tool"], prompt=r["prompt"],
        clicks=json.loads(r["clicks_json"]), model_name=r["model_name"], model_version=r["model_version"],
        os_user=r["os_user"], created_at=r["created_at"], source_path=r["source_path"],
        measurements=json.loads(r["measurements_json"]) if r["measurements_json"] is not None else None,
    )


def _row_to_draft(r: sqlite3.Row) -> DraftRecord:
    return DraftRecord(
        study_id=r["study_id"], frame_index=r["frame_index"], origin=r["origin"], updated_at=r["updated_at"],
        session_id=r["session_id"], source_path=r["source_path"], file=r["file"], sha256=r["sha256"],
    )
