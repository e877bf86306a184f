"""Training runs: what each retraining started from, used, produced, and how it ended."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
from typing import Any

from tnseg_desktop.store.connection import Database
from tnseg_desktop.store.errors import StoreError, UnknownRecordError
from tnseg_desktop.store.model_versions import _id_of
from tnseg_desktop.store.records import TrainingRun, utc_now
from tnseg_desktop.store.sessions import pid_alive

RUN_STATUSES = ("running", "succeeded", "failed", "cancelled")


class TrainingRunningError(StoreError):
    """A retraining of this store is already running."""

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
    """Record a run as it starts (status 'running'); finish it with finish_training_run.

    One retraining per store at a time: the check for a running one and the new row are one write
    transaction, so two windows cannot both start. A 'running' run whose processes are gone is marked
    failed on the way.
    """
    with db.write() as c:
        _fail_abandoned(c)
        other = c.execute("SELECT id, started_at, pid, worker_pid FROM training_runs WHERE status = 'running'").fetchone()
        if other is not None:
            raise TrainingRunningError(
                f"Another retraining of this annotation store is running (run {other['id']}, started {other['started_at']}, "
                f"process {other['worker_pid'] or other['pid']}); wait for it to finish or cancel it in the window that started it.",
                str(db.path))
        base_id = _id_of(c, base_version) if base_version else None
        cur = c.execute(
            """INSERT INTO training_runs (base_version_id, job_json, n_edits, last_edit_id, log_path, started_at, pid, host)
               VALUES (?,?,?,?,?,?,?,?)""",
            (base_id, json.dumps(job or {}), n_edits, last_edit_id, log_path, utc_now(), os.getpid(), socket.gethostname()),
        )
        run_id = int(cur.lastrowid)
    return get_training_run(db, run_id)


ABANDONED = "The training process ended without reporting a result (the app or the worker was stopped)."


def _fail_abandoned(c: sqlite3.Connection) -> int:
    """Mark failed every 'running' run of this host whose app and worker processes are both gone."""
    host = socket.gethostname()
    gone = [r["id"] for r in c.execute("SELECT id, pid, worker_pid, host FROM training_runs WHERE status = 'running'")
            if r["host"] == host and not pid_alive(r["pid"]) and not pid_alive(r["worker_pid"])]
    for run_id in gone:
        c.execute("UPDATE training_runs SET status = 'failed', error = ?, finished_at = ? WHERE id = ?",
                  (ABANDONED, utc_now(), run_id))
    return len(gone)


def fail_abandoned_runs(db: Database) -> int:
    """At start: runs left 'running' by a process that is gone are failed (never 'running' forever)."""
    host = socket.gethostname()
    rows = db.query("SELECT pid, worker_pid, host FROM training_runs WHERE status = 'running'")
    if not any(r["host"] == host and not pid_alive(r["pid"]) and not pid_alive(r["worker_pid"]) for r in rows):
        return 0
    with db.write() as c:
        return _fail_abandoned(c)


def set_worker_pid(db: Database, run_id: int, pid: int) -> None:
    """The worker process of a run, once started (its lock holds while either process lives)."""
    with db.write() as c:
        c.execute("UPDATE training_runs SET worker_pid = ? WHERE id = ?", (int(pid), int(run_id)))


def running_run(db: Database) -> TrainingRun | None:
    row = db.query_one(_SELECT + " WHERE r.status = 'running' ORDER BY r.id DESC")
    return _row_to_run(row) if row else None


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
