"""Model versions: every trained model is kept, one per role is active, the user can roll back.

A role is what the version is for: ``auto`` (the automatic-mask network,
tnseg-lite) or ``decoder`` (LiteMedSAM's prompt encoder + mask decoder, which
answers boxes and clicks). Promoting a version supersedes only the active one
of its own role, so a retrained decoder never displaces the automatic model.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from tnseg_desktop.store.connection import Database
from tnseg_desktop.store.errors import StoreError, UnknownRecordError
from tnseg_desktop.store.records import ModelVersion, utc_now

STATUSES = ("active", "candidate", "rejected", "superseded")
ROLES = ("auto", "decoder")

_SELECT = """SELECT v.*, p.name AS parent_name FROM model_versions v
             LEFT JOIN model_versions p ON p.id = v.parent_id"""


def _row_to_version(r: sqlite3.Row) -> ModelVersion:
    return ModelVersion(
        id=r["id"], name=r["name"], parent_id=r["parent_id"], parent_name=r["parent_name"], file=r["file"],
        sha256=r["sha256"], metrics=json.loads(r["metrics_json"]), data_counts=json.loads(r["data_counts_json"]),
        last_edit_id=r["last_edit_id"], created_at=r["created_at"], status=r["status"], role=r["role"],
    )


def _id_of(conn: sqlite3.Connection, name: str) -> int:
    row = conn.execute("SELECT id FROM model_versions WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise UnknownRecordError(f"The store has no model version named '{name}'.")
    return int(row[0])


def record_model_version(
    db: Database,
    name: str,
    *,
    file: str = "",
    sha256: str = "",
    parent: str | None = None,
    metrics: dict[str, Any] | None = None,
    data_counts: dict[str, Any] | None = None,
    last_edit_id: int | None = None,
    status: str = "candidate",
    role: str = "auto",
) -> ModelVersion:
    if status not in STATUSES:
        raise StoreError(f"Unknown model version status '{status}' (use one of {', '.join(STATUSES)}).")
    _check_role(role)
    with db.write() as c:
        if c.execute("SELECT 1 FROM model_versions WHERE name = ?", (name,)).fetchone():
            raise StoreError(f"A model version named '{name}' is already recorded.")
        parent_id = _id_of(c, parent) if parent else None
        if status == "active":
            c.execute("UPDATE model_versions SET status = 'superseded' WHERE status = 'active' AND role = ?", (role,))
        c.execute(
            """INSERT INTO model_versions (name, parent_id, file, sha256, metrics_json, data_counts_json,
               last_edit_id, created_at, status, role) VALUES (?,?,?,?,?,?,?,?,?,?)""",
            (name, parent_id, file, sha256, json.dumps(metrics or {}), json.dumps(data_counts or {}),
             last_edit_id, utc_now(), status, role),
        )
    return get_model_version(db, name)


def get_model_version(db: Database, name: str) -> ModelVersion:
    row = db.query_one(_SELECT + " WHERE v.name = ?", (name,))
    if row is None:
        raise UnknownRecordError(f"The store has no model version named '{name}'.")
    return _row_to_version(row)


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise StoreError(f"Unknown model version role '{role}' (use one of {', '.join(ROLES)}).")


def list_model_versions(db: Database, role: str | None = None) -> list[ModelVersion]:
    if role is None:
        return [_row_to_version(r) for r in db.query(_SELECT + " ORDER BY v.id")]
    _check_role(role)
    return [_row_to_version(r) for r in db.query(_SELECT + " WHERE v.role = ? ORDER BY v.id", (role,))]


def active_model_version(db: Database, role: str = "auto") -> ModelVersion | None:
    _check_role(role)
    row = db.query_one(_SELECT + " WHERE v.status = 'active' AND v.role = ?", (role,))
    return _row_to_version(row) if row else None


def set_active_version(db: Database, name: str) -> ModelVersion:
    """Make ``name`` the active version of its role (promotion or roll-back); the previous one becomes 'superseded'."""
    with db.write() as c:
        vid = _id_of(c, name)
        role = c.execute("SELECT role FROM model_versions WHERE id = ?", (vid,)).fetchone()[0]
        c.execute("UPDATE model_versions SET status = 'superseded' WHERE status = 'active' AND role = ? AND id != ?", (role, vid))
        c.execute("UPDATE model_versions SET status = 'active' WHERE id = ?", (vid,))
    return get_model_version(db, name)


def set_version_status(db: Database, name: str, status: str) -> ModelVersion:
    if status == "active":
        return set_active_version(db, name)
    if status not in STATUSES:
        raise StoreError(f"Unknown model version status '{status}' (use one of {', '.join(STATUSES)}).")
    with db.write() as c:
        c.execute("UPDATE model_versions SET status = ? WHERE id = ?", (status, _id_of(c, name)))
    return get_model_version(db, name)
