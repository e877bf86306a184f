"""Accepted edits survive kill -9 of the writing process at random moments."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.store.writer_process import ORIGINAL_OFFSET, mask_for
from tnseg_desktop.store import AnnotationStore
from tnseg_desktop.store.annotation_store import DB_NAME
from tnseg_desktop.store.cleanup import remove_leftovers

REPO = Path(__file__).resolve().parents[2]
WRITER = Path(__file__).with_name("writer_process.py")
KILLS = int(os.environ.get("TNSEG_KILL_LOOPS", "24"))

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="kill -9 needs a POSIX system")


def _run_and_kill(store_dir: Path, first_seed: int, rng: random.Random) -> list[tuple[int, int]]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, str(WRITER), str(store_dir), str(first_seed)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=str(REPO))
    lines: list[str] = []
    arrivals: list[float] = []

    def read() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.append(line)
            arrivals.append(time.monotonic())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    # most kills land while accepts are being written (after a random number of them, at a random moment of
    # the next one, whatever the machine's speed); one in ten lands during start-up or schema migration
    accepts_before_kill = rng.randint(2, 8) if rng.random() > 0.1 else -1
    deadline = time.monotonic() + 30.0
    while accepts_before_kill >= 0 and time.monotonic() < deadline and proc.poll() is None:
        if sum(l.startswith("ACCEPTED") for l in list(lines)) >= accepts_before_kill:
            break
        time.sleep(0.002)
    if accepts_before_kill >= 0:
        gaps = np.diff(arrivals[1:]) if len(arrivals) > 2 else np.array([0.05])
        time.sleep(rng.uniform(0.0, float(np.median(gaps))))  # anywhere in the next accept cycle
    else:
        time.sleep(rng.uniform(0.0, 0.5))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    reader.join(timeout=5)
    err = proc.stderr.read() if proc.stderr else ""
    assert "Traceback" not in err, err
    out = []
    for line in lines:
        parts = line.split()
        if len(parts) == 3 and parts[0] == "ACCEPTED":
            out.append((int(parts[1]), int(parts[2])))
    return out


def test_accepted_masks_survive_kill_9(tmp_path: Path) -> None:
    rng = random.Random(1234)
    store_dir = tmp_path / "store"
    reported: dict[int, int] = {}
    for k in range(KILLS):
        for edit_id, seed in _run_and_kill(store_dir, 1000 * (k + 1), rng):
            reported[edit_id] = seed
    print(f"{len(reported)} accepts reported over {KILLS} kills")
    assert len(reported) > KILLS, "the writer hardly ever got to accept anything; the test proves nothing"

    raw = sqlite3.connect(str(store_dir / DB_NAME))
    assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    edits = dict(raw.execute("SELECT id, prompt FROM edits").fetchall())
    raw.close()

    # every accept that returned is in the store
    missing = sorted(set(reported) - set(edits))
    assert not missing, f"accepted edits lost after kill -9: {missing[:10]}"

    with AnnotationStore(store_dir) as store:
        assert store.integrity_check() == "ok"
        # every edit in the store (also one committed just before a kill, unreported) opens intact and matches
        rows = store.db.query("SELECT id, prompt, final_mask_id, original_mask_id FROM edits ORDER BY id")
        assert len(rows) >= len(reported)
        for r in rows:
            seed = int(r["prompt"].split("=")[1])
            if r["id"] in reported:
                assert reported[r["id"]] == seed
            assert np.array_equal(store.load_mask(r["final_mask_id"]), mask_for(seed)), f"edit {r['id']} differs"
            assert np.array_equal(store.load_mask(r["original_mask_id"]), mask_for(seed + ORIGINAL_OFFSET))
        # drafts, too, open intact
        for d in store.drafts():
            assert store.load_draft(d.study_id, d.frame_index) is not None
        # the crashed sessions are offered for recovery
        info = store.recover()
        assert info is not None and info.accepted_in_session >= 0
        # no temporary files are taken for masks, and stale ones can be cleaned
        remove_leftovers(store, min_age_s=0.0)  # every writer is dead: nothing is about to commit
        for a in store.accepted_frames():
            store.load_mask(a.final_mask_id)
