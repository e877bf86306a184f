from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.store.conftest import blob
from tnseg_desktop.store import AnnotationStore, DraftAutosaver, EditInfo, StoreError, UnknownRecordError

REPO = Path(__file__).resolve().parents[2]


def test_accept_keeps_original_and_final_with_provenance(tmp_path: Path, meta) -> None:
    store = AnnotationStore(tmp_path)
    sid = store.add_study(meta, "hash-a")
    assert store.add_study(meta, "hash-a") == sid  # same content, same study
    final, original = blob(40, 50, 20, 25, 8), blob(40, 50, 18, 22, 6)
    info = EditInfo(tool="click", prompt="thyroid nodule", clicks=[{"x": 25, "y": 20, "positive": True}],
                    model_name="tnseg-lite", model_version="v3")
    a = store.accept(sid, 2, final.astype(np.uint8) * 255, original_mask=original, edit_info=info)
    assert a.area_px == int(final.sum()) and a.os_user
    assert np.array_equal(store.load_mask(a.final_mask_id), final)
    assert np.array_equal(store.load_mask(a.original_mask_id), original)
    # a second accept of the same frame: history keeps both, the latest wins
    b = store.accept(sid, 2, final & ~original, edit_info=EditInfo(tool="paint"))
    assert [h.edit_id for h in store.edit_history(sid, 2)] == [a.edit_id, b.edit_id]
    latest = store.accepted_frames(study_id=sid)
    assert [(x.frame_index, x.edit_id, x.tool) for x in latest] == [(2, b.edit_id, "paint")]
    assert a.clicks == store.edit_history(sid, 2)[0].clicks and store.edit_history(sid, 2)[0].model_version == "v3"
    # the store does not keep the patient's name or id in its study metadata
    assert "Doe" not in str(store.study(sid).meta) and "PID-4711" not in str(store.study(sid).meta)
    store.close()


def test_masks_are_kept_at_frame_resolution(tmp_path: Path, meta) -> None:
    store = AnnotationStore(tmp_path)
    sid = store.add_study(meta, "h")
    with pytest.raises(StoreError, match="frame resolution"):
        store.accept(sid, 0, np.zeros((20, 25), bool))
    with pytest.raises(StoreError, match="outside"):
        store.accept(sid, 6, np.zeros((40, 50), bool))
    with pytest.raises(UnknownRecordError):
        store.accept(99, 0, np.zeros((40, 50), bool))


def test_accepted_frames_since_model_version(tmp_path: Path, meta) -> None:
    store = AnnotationStore(tmp_path)
    sid = store.add_study(meta, "h")
    for f in range(3):
        store.accept(sid, f, blob(40, 50, 20, 20, 5 + f))
    v1 = store.record_model_version("lite-v1", file="a.safetensors", sha256="aa", metrics={"dice": 0.7},
                                    data_counts={"user_frames": 3}, last_edit_id=store.last_edit_id(), status="active")
    assert v1.status == "active" and store.active_model_version().name == "lite-v1"
    store.accept(sid, 4, blob(40, 50, 10, 10, 4))
    store.accept(sid, 1, blob(40, 50, 12, 10, 4))  # re-edited after training: counts as new
    assert [a.frame_index for a in store.accepted_frames(since_version="lite-v1")] == [1, 4]
    assert len(store.accepted_frames()) == 4

    run = store.record_training_run(base_version="lite-v1", job={"steps": 10}, n_edits=2,
                                    last_edit_id=store.last_edit_id())
    store.record_model_version("lite-v2", parent="lite-v1", last_edit_id=run.last_edit_id)
    done = store.finish_training_run(run.id, "succeeded", result_version="lite-v2", metrics={"dice": 0.72})
    assert done.result_version == "lite-v2" and done.base_version == "lite-v1" and done.finished_at
    store.set_active_version("lite-v2")
    states = {v.name: v.status for v in store.list_model_versions()}
    assert states == {"lite-v1": "superseded", "lite-v2": "active"}
    assert store.model_version("lite-v2").parent_name == "lite-v1"
    store.set_active_version("lite-v1")  # roll back
    assert store.active_model_version().name == "lite-v1"
    store.set_version_status("lite-v2", "rejected")
    assert store.accepted_frames(since_version="lite-v2") == []
    with pytest.raises(StoreError):
        store.record_model_version("lite-v2")


def test_autosaver_drafts_and_accept(tmp_path: Path, meta) -> None:
    store = AnnotationStore(tmp_path)
    sid = store.add_study(meta, "h")
    saver = DraftAutosaver(store, sid)
    m = blob(40, 50, 20, 20, 7)
    saver.mark_dirty(1, m)
    saver.mark_dirty(3, ~m, origin="auto")
    assert saver.pending == [1, 3] and store.drafts() == []
    assert saver.flush() == 2 and saver.flush() == 0
    assert [(d.frame_index, d.origin) for d in store.drafts(sid)] == [(1, "edit"), (3, "auto")]
    assert np.array_equal(store.load_draft(sid, 3), ~m)
    saver.mark_dirty(1, m & False)
    saver.accept(1, m)  # the pending older draft must not come back after the accept
    assert saver.flush() == 0
    assert [d.frame_index for d in store.drafts(sid)] == [3]
    saver.discard(3)
    assert store.drafts() == []


CRASHER = """
import os, sys
import numpy as np
from tests.store.conftest import make_meta, blob
from tnseg_desktop.store import AnnotationStore, DraftAutosaver
store = AnnotationStore(sys.argv[1])
store.start_session()
sid = store.add_study(make_meta(), "h")
store.accept(sid, 0, blob(40, 50, 20, 20, 5))
saver = DraftAutosaver(store, sid)
saver.mark_dirty(2, blob(40, 50, 10, 10, 6))
saver.flush()
os._exit(9)  # crash: no close, no end of session
"""


def test_recovery_after_crash(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    subprocess.run([sys.executable, "-c", CRASHER, str(tmp_path)], env=env, cwd=str(REPO), check=False)
    store = AnnotationStore(tmp_path)
    info = store.recover()
    assert info is not None
    assert [(d.study_id, d.frame_index) for d in info.drafts] == [(1, 2)]
    assert info.accepted_in_session == 1 and "1 unsaved draft" in info.message
    store.start_session()
    store.finish_recovery(info, restore=True)
    assert store.recover() is None
    assert np.array_equal(store.load_draft(1, 2), blob(40, 50, 10, 10, 6))
    assert store.drafts()[0].session_id == store.session_id
    store.close()
    # a clean close leaves nothing to recover
    again = AnnotationStore(tmp_path)
    assert again.recover() is None
    again.close()


def test_second_window_is_not_a_crash(tmp_path: Path) -> None:
    first = AnnotationStore(tmp_path)
    first.start_session()
    second = AnnotationStore(tmp_path)
    assert second.recover() is None  # first is alive in this process
    second.close()
    first.close()
