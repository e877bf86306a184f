"""Leftovers of killed processes are removed at start, and nothing anyone refers to is touched."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from tests.store.conftest import blob
from tnseg_desktop.atomic_write import atomic_write_bytes
from tnseg_desktop.store import AnnotationStore, EditInfo
from tnseg_desktop.store.cleanup import MIN_AGE_S, remove_leftovers


def _age(path: Path, seconds: float) -> Path:
    t = time.time() - seconds
    os.utime(path, (t, t))
    return path


def _leftovers(store: AnnotationStore, models: Path) -> dict[str, Path]:
    """What a kill at each moment leaves: a mask written whose row never committed, the atomic writer's
    temporary files (mask folder, models folder), an embedding cache's part file."""
    orphan_rel, _, _ = store.files.put(blob(40, 50, 10, 10, 5))  # written, never named by a row
    models.mkdir(parents=True, exist_ok=True)
    (models / ".tnseg-lite-u3.safetensors.abc123.tmp").write_bytes(b"half a model")
    (store.root / "masks" / "ab").mkdir(parents=True, exist_ok=True)
    (store.root / "masks" / "ab" / ".cafe.png.x1.tmp").write_bytes(b"half a png")
    (store.root / ".tmp-q1.part").write_bytes(b"part")
    return {"orphan": store.root / orphan_rel, "model_tmp": models / ".tnseg-lite-u3.safetensors.abc123.tmp",
            "mask_tmp": store.root / "masks" / "ab" / ".cafe.png.x1.tmp", "part": store.root / ".tmp-q1.part"}


def test_stale_temporaries_and_unreferenced_masks_go_and_every_accepted_mask_stays(tmp_path: Path, meta) -> None:
    store = AnnotationStore(tmp_path / "store")
    models = tmp_path / "models"
    sid = store.add_study(meta, "hash-a")
    kept = store.accept(sid, 1, blob(40, 50, 20, 25, 8), original_mask=blob(40, 50, 18, 22, 6),
                        edit_info=EditInfo(tool="click"))
    store.save_draft(sid, 3, blob(40, 50, 30, 30, 4), origin="painted")
    atomic_write_bytes(models / "tnseg-lite-u2.safetensors", b"a finished model")
    left = _leftovers(store, models)
    for p in list(tmp_path.rglob("*")):
        if p.is_file():
            _age(p, MIN_AGE_S + 60)  # all of it from a run killed long ago

    report = remove_leftovers(store, models)

    assert sorted(report.temp_files) == sorted([left["model_tmp"], left["mask_tmp"], left["part"]])
    assert report.orphan_masks == [left["orphan"]]
    assert not any(p.exists() for p in left.values())
    assert "3 temporary file(s) and 1 unreferenced mask file(s)" in report.summary()
    # what rows name is intact: the accepted edit (final and original), the draft, the finished model
    assert np.array_equal(store.load_mask(kept.final_mask_id), blob(40, 50, 20, 25, 8))
    assert np.array_equal(store.load_mask(kept.original_mask_id), blob(40, 50, 18, 22, 6))
    assert store.load_draft(sid, 3) is not None
    assert (models / "tnseg-lite-u2.safetensors").read_bytes() == b"a finished model"
    assert remove_leftovers(store, models).removed == 0  # nothing left the second time


def test_recent_files_are_kept_as_another_process_may_be_about_to_commit_them(tmp_path: Path) -> None:
    store = AnnotationStore(tmp_path / "store")
    left = _leftovers(store, tmp_path / "models")
    report = remove_leftovers(store, tmp_path / "models")
    assert report.removed == 0 and report.kept_recent == 4
    assert all(p.exists() for p in left.values())


def test_a_reused_mask_file_is_fresh_again_so_cleanup_cannot_take_it_before_its_row_commits(tmp_path: Path) -> None:
    store = AnnotationStore(tmp_path / "store")
    mask = blob(40, 50, 12, 12, 6)
    rel, _, _ = store.files.put(mask)  # an old orphan...
    _age(store.root / rel, MIN_AGE_S + 60)
    assert store.files.put(mask)[0] == rel  # ...that another writer now reuses (same content, same name)
    assert remove_leftovers(store).orphan_masks == []
    assert (store.root / rel).exists()


def test_the_models_folder_is_left_alone_while_a_training_run_is_alive(tmp_path: Path) -> None:
    store = AnnotationStore(tmp_path / "store")
    models = tmp_path / "models"
    models.mkdir()
    tmp = models / ".tnseg-lite-u4.safetensors.zz.tmp"
    tmp.write_bytes(b"being written by the live worker")
    _age(tmp, MIN_AGE_S + 60)
    store.record_model_version("tnseg-lite", status="active")
    store.record_training_run(base_version="tnseg-lite", job={"steps": 10}, n_edits=1, last_edit_id=0)  # this process lives
    assert remove_leftovers(store, models).temp_files == []
    assert tmp.exists()
