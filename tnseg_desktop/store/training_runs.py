"""Training runs: what each retraining started from, used, produced, and how it ended."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from tnseg_desktop.store.connection import Database
from tnseg_desktop.store.errors import StoreError, UnknownRecordError
from tnseg_desktop.store.model_versions import _id_of
from tnseg_desktop.store.records import TrainingRun, utc_now

RUN_STATUSES = ("running", "succeeded", "failed", "cancelled")

_SELECT = """SELECT r.*, b.name AS base_name, v.name AS result_name FROM training_runs r
             LEFT JOIN model_versions b ON b.id = r.base_version_id
             LEFT JOIN model_versions v ON v.id = r.result_version_id"""


def _row_to_run(r: sqlite3.Row) -> TrainingRun:
    return TrainingRun(
        id=r["id"], base_version=r["base_name"], result_version=r["result_name"], status=r["status"],
        job=json.loads(r["job_json"]), metrics=json.loads(r["metrics_json"]), n_edits=r["n_edits"],
        last_edit_id=r["last_edit_id"], log_path=r["log_path"], error=r["error"],
        started_at=r["started_at"], finished_at=r["finished_at"],
    )


def record_training_run(
    db: Database,
    *,
    base_version: str | None = None,
    job: dict[str, Any] | None = None,
    n_edits: int = 0,
    last_edit_id: int | None = None,
    log_path: str = "",
) -> TrainingRun:
    """Record a run as it starts (status 'running'); finish it with finish_training_run."""
    with db.write() as c:
        base_id = _id_of(c, base_version) if base_version else None
        cur = c.execute(
            """INSERT INTO training_runs (base_version_id, job_json, n_edits, last_edit_id, log_path, started_at)
               VALUES (?,?,?,?,?,?)""",
            (base_id, json.dumps(job or {}), n_edits, last_edit_id, log_path, utc_now()),
        )
        run_id = int(cur.lastrowid)
    return get_training_run(db, run_id)


def finish_training_run(
    db: Database,
    run_id: int,
    status: str,
    *,
    result_version: str | None = None,
    metrics: dict[str, Any] | None = None,
    error: str = "",
) -> TrainingRun:
    if status not in RUN_STATUSES or status == "running":
        raise StoreError(f"A finished training run needs status succeeded, failed or cancelled, not '{status}'.")
    with db.write() as c:
        result_id = _id_of(c, result_version) if result_version else None
        cur = c.execute(
            """UPDATE training_runs SET status = ?, result_version_id = ?, metrics_json = ?, error = ?, finished_at = ?
               WHERE id = ?""",
            (status, result_id, json.dumps(metrics or {}), error, utc_now(), run_id),
        )
        if cur.rowcount == 0:
            raise UnknownRecordError(f"The store has no training run {run_id}.")
    return get_training_run(db, run_id)


def get_training_run(db: Database, run_id: int) -> TrainingRun:
    row = db.query_one(_SELECT + " WHERE r.id = ?", (run_id,))
    if row is None:
        raise UnknownRecordError(f"The store has no training run {run_id}.")
    return _row_to_run(row)


def list_training_runs(db: Database) -> list[TrainingRun]:
    return [_row_to_run(r) for r in db.query(_SELECT + " ORDER BY r.id")]
