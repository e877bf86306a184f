"""The store's tables and the migrations that bring an older store up to date.

``PRAGMA user_version`` holds the number of migrations applied. Migrations are
append-only: never edit one that has shipped, add the next instead. Each is a
list of single statements (no ``executescript``, which would commit mid-way).
"""

from __future__ import annotations

import sqlite3

from tnseg_desktop.store.errors import StoreError

# version 1: studies, frames, masks, edits, drafts and sessions
_V1 = [
    """CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)""",
    """CREATE TABLE studies (
        id INTEGER PRIMARY KEY,
        source_path TEXT NOT NULL,
        content_hash TEXT NOT NULL UNIQUE,
        study_instance_uid TEXT NOT NULL DEFAULT '',
        series_instance_uid TEXT NOT NULL DEFAULT '',
        sop_instance_uids TEXT NOT NULL DEFAULT '[]',
        n_frames INTEGER NOT NULL,
        rows INTEGER NOT NULL,
        cols INTEGER NOT NULL,
        meta_json TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL)""",
    """CREATE TABLE frames (
        id INTEGER PRIMARY KEY,
        study_id INTEGER NOT NULL REFERENCES studies(id),
        frame_index INTEGER NOT NULL,
        sop_instance_uid TEXT NOT NULL DEFAULT '',
        UNIQUE (study_id, frame_index))""",
    """CREATE TABLE masks (
        id INTEGER PRIMARY KEY,
        frame_id INTEGER NOT NULL REFERENCES frames(id),
        kind TEXT NOT NULL CHECK (kind IN ('original', 'final')),
        file TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        area_px INTEGER NOT NULL,
        created_at TEXT NOT NULL)""",
    """CREATE TABLE edits (
        id INTEGER PRIMARY KEY,
        frame_id INTEGER NOT NULL REFERENCES frames(id),
        original_mask_id INTEGER REFERENCES masks(id),
        final_mask_id INTEGER NOT NULL REFERENCES masks(id),
        tool TEXT NOT NULL DEFAULT '',
        prompt TEXT,
        clicks_json TEXT NOT NULL DEFAULT '[]',
        model_name TEXT,
        model_version TEXT,
        os_user TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL)""",
    """CREATE TABLE drafts (
        study_id INTEGER NOT NULL REFERENCES studies(id),
        frame_index INTEGER NOT NULL,
        file TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        origin TEXT NOT NULL DEFAULT '',
        updated_at TEXT NOT NULL,
        PRIMARY KEY (study_id, frame_index))""",
    """CREATE TABLE sessions (
        id INTEGER PRIMARY KEY,
        started_at TEXT NOT NULL,
        ended_at TEXT,
        clean INTEGER NOT NULL DEFAULT 0,
        pid INTEGER NOT NULL,
        host TEXT NOT NULL DEFAULT '',
        os_user TEXT NOT NULL DEFAULT '')""",
]

# version 2: model versions, training runs, session links for edits and drafts
_V2 = [
    "ALTER TABLE edits ADD COLUMN session_id INTEGER REFERENCES sessions(id)",
    "ALTER TABLE drafts ADD COLUMN session_id INTEGER REFERENCES sessions(id)",
    "ALTER TABLE sessions ADD COLUMN app_version TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE sessions ADD COLUMN recovered_at TEXT",
    """CREATE TABLE model_versions (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        parent_id INTEGER REFERENCES model_versions(id),
        file TEXT NOT NULL DEFAULT '',
        sha256 TEXT NOT NULL DEFAULT '',
        metrics_json TEXT NOT NULL DEFAULT '{}',
        data_counts_json TEXT NOT NULL DEFAULT '{}',
        last_edit_id INTEGER,
        created_at TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'candidate'
            CHECK (status IN ('active', 'candidate', 'rejected', 'superseded')))""",
    """CREATE TABLE training_runs (
        id INTEGER PRIMARY KEY,
        base_version_id INTEGER REFERENCES model_versions(id),
        result_version_id INTEGER REFERENCES model_versions(id),
        status TEXT NOT NULL DEFAULT 'running'
            CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled')),
        job_json TEXT NOT NULL DEFAULT '{}',
        metrics_json TEXT NOT NULL DEFAULT '{}',
        n_edits INTEGER NOT NULL DEFAULT 0,
        last_edit_id INTEGER,
        log_path TEXT NOT NULL DEFAULT '',
        error TEXT NOT NULL DEFAULT '',
        started_at TEXT NOT NULL,
        finished_at TEXT)""",
    "CREATE INDEX edits_by_frame ON edits(frame_id)",
    "CREATE INDEX masks_by_frame ON masks(frame_id)",
]

# version 3: the accepted mask's measurements (JSON), saved with the edit
_V3 = [
    "ALTER TABLE edits ADD COLUMN measurements_json TEXT",
]

# version 4: which process runs a training run (one retraining per store; a run whose process is gone is failed)
_V4 = [
    "ALTER TABLE training_runs ADD COLUMN pid INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE training_runs ADD COLUMN worker_pid INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE training_runs ADD COLUMN host TEXT NOT NULL DEFAULT ''",
]

# version 5: what a model version is for: "auto" (the automatic-mask network) or "decoder" (LiteMedSAM's
# prompt encoder + mask decoder); each role has its own active version
_V5 = [
    "ALTER TABLE model_versions ADD COLUMN role TEXT NOT NULL DEFAULT 'auto'",
]

MIGRATIONS: list[list[str]] = [_V1, _V2, _V3, _V4, _V5]
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, db_path: str) -> int:
    """Bring the database to SCHEMA_VERSION in one transaction; returns the version found before."""
    found = schema_version(conn)
    if found > SCHEMA_VERSION:
        raise StoreError(
            f"The annotation store was written by a newer tnseg-desktop (schema {found}, this one knows {SCHEMA_VERSION}); "
            "update the app or use another store folder.",
            db_path,
        )
    if found == SCHEMA_VERSION:
        return found
    conn.execute("BEGIN IMMEDIATE")
    try:
        # another process may have migrated while we waited for the write lock
        current = schema_version(conn)
        for statements in MIGRATIONS[current:]:
            for sql in statements:
                conn.execute(sql)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return found
