"""A store written by schema version 1 opens in this version without losing anything."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import numpy as np

from tests.store.conftest import blob
from tnseg_desktop.store import AnnotationStore, EditInfo
from tnseg_desktop.atomic_write import atomic_write_bytes
from tnseg_desktop.store.maskfiles import encode_png
from tnseg_desktop.store.schema import SCHEMA_VERSION

# the version-1 schema as it shipped; kept here verbatim so the test does not depend on schema.py
V1_SQL = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE studies (id INTEGER PRIMARY KEY, source_path TEXT NOT NULL, content_hash TEXT NOT NULL UNIQUE,
  study_instance_uid TEXT NOT NULL DEFAULT '', series_instance_uid TEXT NOT NULL DEFAULT '',
  sop_instance_uids TEXT NOT NULL DEFAULT '[]', n_frames INTEGER NOT NULL, rows INTEGER NOT NULL,
  cols INTEGER NOT NULL, meta_json TEXT NOT NULL DEFAULT '{}', created_at TEXT NOT NULL);
CREATE TABLE frames (id INTEGER PRIMARY KEY, study_id INTEGER NOT NULL REFERENCES studies(id),
  frame_index INTEGER NOT NULL, sop_instance_uid TEXT NOT NULL DEFAULT '', UNIQUE (study_id, frame_index));
CREATE TABLE masks (id INTEGER PRIMARY KEY, frame_id INTEGER NOT NULL REFERENCES frames(id),
  kind TEXT NOT NULL CHECK (kind IN ('original', 'final')), file TEXT NOT NULL, sha256 TEXT NOT NULL,
  area_px INTEGER NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE edits (id INTEGER PRIMARY KEY, frame_id INTEGER NOT NULL REFERENCES frames(id),
  original_mask_id INTEGER REFERENCES masks(id), final_mask_id INTEGER NOT NULL REFERENCES masks(id),
  tool TEXT NOT NULL DEFAULT '', prompt TEXT, clicks_json TEXT NOT NULL DEFAULT '[]', model_name TEXT,
  model_version TEXT, os_user TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL);
CREATE TABLE drafts (study_id INTEGER NOT NULL REFERENCES studies(id), frame_index INTEGER NOT NULL,
  file TEXT NOT NULL, sha256 TEXT NOT NULL, origin TEXT NOT NULL DEFAULT '', updated_at TEXT NOT NULL,
  PRIMARY KEY (study_id, frame_index));
CREATE TABLE sessions (id INTEGER PRIMARY KEY, started_at TEXT NOT NULL, ended_at TEXT,
  clean INTEGER NOT NULL DEFAULT 0, pid INTEGER NOT NULL, host TEXT NOT NULL DEFAULT '',
  os_user TEXT NOT NULL DEFAULT '');
PRAGMA user_version = 1;
"""

# what version 2 added, as it shipped
V2_SQL = """
ALTER TABLE edits ADD COLUMN session_id INTEGER REFERENCES sessions(id);
ALTER TABLE drafts ADD COLUMN session_id INTEGER REFERENCES sessions(id);
ALTER TABLE sessions ADD COLUMN app_version TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN recovered_at TEXT;
CREATE TABLE model_versions (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
  parent_id INTEGER REFERENCES model_versions(id), file TEXT NOT NULL DEFAULT '', sha256 TEXT NOT NULL DEFAULT '',
  metrics_json TEXT NOT NULL DEFAULT '{}', data_counts_json TEXT NOT NULL DEFAULT '{}', last_edit_id INTEGER,
  created_at TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'candidate'
  CHECK (status IN ('active', 'candidate', 'rejected', 'superseded')));
CREATE TABLE training_runs (id INTEGER PRIMARY KEY, base_version_id INTEGER REFERENCES model_versions(id),
  result_version_id INTEGER REFERENCES model_versions(id), status TEXT NOT NULL DEFAULT 'running'
  CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled')), job_json TEXT NOT NULL DEFAULT '{}',
  metrics_json TEXT NOT NULL DEFAULT '{}', n_edits INTEGER NOT NULL DEFAULT 0, last_edit_id INTEGER,
  log_path TEXT NOT NULL DEFAULT '', error TEXT NOT NULL DEFAULT '', started_at TEXT NOT NULL, finished_at TEXT);
CREATE INDEX edits_by_frame ON edits(frame_id);
CREATE INDEX masks_by_frame ON masks(frame_id);
PRAGMA user_version = 2;
"""


def _put(root: Path, mask: np.ndarray) -> tuple[str, str]:
    data = encode_png(mask)
    sha = hashlib.sha256(data).hexdigest()
    rel = f"masks/{sha[:2]}/{sha}.png"
    atomic_write_bytes(root / rel, data)
    return rel, sha


def test_v1_store_migrates_without_loss(tmp_path: Path) -> None:
    final, original, draft = blob(30, 40, 15, 20, 6), blob(30, 40, 14, 18, 5), blob(30, 40, 5, 5, 3)
    (f_rel, f_sha), (o_rel, o_sha), (d_rel, d_sha) = _put(tmp_path, final), _put(tmp_path, original), _put(tmp_path, draft)
    conn = sqlite3.connect(str(tmp_path / "annotations.sqlite3"))
    conn.executescript(V1_SQL)
    conn.execute("INSERT INTO meta VALUES ('deid_salt', 'old-salt')")
    conn.execute("""INSERT INTO studies VALUES (1, '/data/old.dcm', 'oldhash', '1.2', '1.2.3', '["1.2.3.4"]', 4, 30, 40,
                    '{}', '2024-01-01T00:00:00+00:00')""")
    conn.execute("INSERT INTO frames VALUES (1, 1, 2, '1.2.3.4')")
    conn.execute("INSERT INTO masks VALUES (1, 1, 'original', ?, ?, ?, '2024-01-01')", (o_rel, o_sha, int(original.sum())))
    conn.execute("INSERT INTO masks VALUES (2, 1, 'final', ?, ?, ?, '2024-01-01')", (f_rel, f_sha, int(final.sum())))
    conn.execute("""INSERT INTO edits VALUES (1, 1, 1, 2, 'text', 'nodule', '[[3, 4, 1]]', 'clip-tnseg', 'base',
                    'annotator', '2024-01-01T00:00:01+00:00')""")
    conn.execute("INSERT INTO drafts VALUES (1, 3, ?, ?, 'paint', '2024-01-01')", (d_rel, d_sha))
    conn.execute("INSERT INTO sessions VALUES (1, '2024-01-01', '2024-01-01', 1, 1, 'h', 'annotator')")
    conn.commit()
    conn.close()

    store = AnnotationStore(tmp_path)
    assert store.migrated_from == 1
    assert store.db.query_one("PRAGMA user_version")[0] == SCHEMA_VERSION
    assert store.deid_salt == "old-salt"
    [a] = store.accepted_frames()
    assert (a.study_id, a.frame_index, a.tool, a.prompt, a.clicks, a.model_name, a.os_user) == (
        1, 2, "text", "nodule", [[3, 4, 1]], "clip-tnseg", "annotator")
    assert a.measurements is None
    assert np.array_equal(store.load_mask(a.final_mask_id), final)
    assert np.array_equal(store.load_mask(a.original_mask_id), original)
    assert np.array_equal(store.load_draft(1, 3), draft)
    assert store.study(1).sop_instance_uids == ["1.2.3.4"]
    # the new tables work and new writes go on from the old rows
    store.record_model_version("after-migration", last_edit_id=a.edit_id, status="active")
    b = store.accept(1, 2, ~final)
    assert b.edit_id == 2 and store.accepted_frames(since_version="after-migration")[0].edit_id == 2
    assert store.integrity_check() == "ok"
    store.close()
    # opening again is a no-op
    again = AnnotationStore(tmp_path)
    assert again.migrated_from == SCHEMA_VERSION
    again.close()


def test_v2_store_migrates_and_old_edits_have_no_measurements(tmp_path: Path) -> None:
    final = blob(30, 40, 15, 20, 6)
    f_rel, f_sha = _put(tmp_path, final)
    conn = sqlite3.connect(str(tmp_path / "annotations.sqlite3"))
    conn.executescript(V1_SQL)
    conn.executescript(V2_SQL)
    conn.execute("""INSERT INTO studies VALUES (1, '/data/old.dcm', 'oldhash', '1.2', '1.2.3', '["1.2.3.4"]', 4, 30, 40,
                    '{}', '2024-01-01T00:00:00+00:00')""")
    conn.execute("INSERT INTO sessions VALUES (1, '2024-01-01', '2024-01-01', 1, 1, 'h', 'annotator', '0.1', NULL)")
    conn.execute("INSERT INTO frames VALUES (1, 1, 2, '1.2.3.4')")
    conn.execute("INSERT INTO masks VALUES (1, 1, 'final', ?, ?, ?, '2024-01-01')", (f_rel, f_sha, int(final.sum())))
    conn.execute("""INSERT INTO edits VALUES (1, 1, NULL, 1, 'paint', NULL, '[]', NULL, NULL, 'annotator',
                    '2024-01-01T00:00:01+00:00', 1)""")
    conn.commit()
    conn.close()

    store = AnnotationStore(tmp_path)
    assert store.migrated_from == 2
    assert store.db.query_one("PRAGMA user_version")[0] == SCHEMA_VERSION
    [a] = store.accepted_frames()
    assert (a.frame_index, a.tool, a.os_user, a.measurements) == (2, "paint", "annotator", None)
    assert np.array_equal(store.load_mask(a.final_mask_id), final)
    size = {"area_px": int(final.sum()), "area_mm2": None, "diameter": 12.0, "perpendicular": 12.0, "unit": "px"}
    b = store.accept(1, 2, final, edit_info=EditInfo(tool="paint", measurements=size))
    assert b.measurements == size
    assert [h.measurements for h in store.edit_history(1, 2)] == [None, size]
    assert store.integrity_check() == "ok"
    store.close()


def test_store_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    conn = sqlite3.connect(str(tmp_path / "annotations.sqlite3"))
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    import pytest

    from tnseg_desktop.store import StoreError

    with pytest.raises(StoreError, match="newer tnseg-desktop"):
        AnnotationStore(tmp_path)
