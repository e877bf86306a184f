"""Two app instances on one store: both write safely; a store held too long gives a clear message."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from tests.store.conftest import blob, make_meta
from tnseg_desktop.store import AnnotationStore, StoreLockedError

REPO = Path(__file__).resolve().parents[2]

WRITER = """
import sys
from tests.store.conftest import make_meta, blob
from tnseg_desktop.store import AnnotationStore
store = AnnotationStore(sys.argv[1])
sid = store.add_study(make_meta(frames=40), "shared-study")
tag = int(sys.argv[2])
for f in range(tag, 40, 2):
    store.accept(sid, f, blob(40, 50, 20, 20, 3 + f % 10))
    store.save_draft(sid, (f + 1) % 40, blob(40, 50, 10, 10, 2))
store.close()
print("DONE")
"""


def test_two_processes_write_at_once(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), str(t)], env=env, cwd=str(REPO),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for t in (0, 1)]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0 and "DONE" in out, err
    with AnnotationStore(tmp_path) as store:
        frames = store.accepted_frames()
        assert [a.frame_index for a in frames] == list(range(40))
        for a in frames:
            assert np.array_equal(store.load_mask(a.final_mask_id), blob(40, 50, 20, 20, 3 + a.frame_index % 10))
        assert len(store.studies()) == 1 and store.integrity_check() == "ok"


def test_threads_share_one_store(tmp_path: Path) -> None:
    store = AnnotationStore(tmp_path)
    sid = store.add_study(make_meta(frames=20), "h")
    errors: list[BaseException] = []

    def work(start: int) -> None:
        try:
            for f in range(start, 20, 4):
                store.accept(sid, f, blob(40, 50, 20, 20, 2 + f))
                store.accepted_frames()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(store.accepted_frames()) == 20
    store.close()


def test_locked_store_gives_a_clear_message(tmp_path: Path, capsys) -> None:
    store = AnnotationStore(tmp_path, busy_timeout_s=0.3)
    sid = store.add_study(make_meta(), "h")
    holder = sqlite3.connect(str(store.db_path), isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another program holding the write lock
    try:
        with pytest.raises(StoreLockedError) as err:
            store.accept(sid, 0, blob(40, 50, 20, 20, 5))
        line = err.value.one_line()
        assert "locked by another program" in line and str(store.db_path) in line and "\n" not in line
        # reading still works while the other program writes (WAL)
        assert store.accepted_frames() == []
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert store.accept(sid, 0, blob(40, 50, 20, 20, 5)).edit_id == 1
    store.close()
