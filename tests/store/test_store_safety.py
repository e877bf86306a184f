"""A store that existed is never silently replaced: missing, empty or damaged databases, backups, restore."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from tests.store.conftest import blob, make_meta
from tnseg_desktop import cli, paths
from tnseg_desktop.store import AnnotationStore, StoreDamagedError, StoreError
from tnseg_desktop.store.annotation_store import DB_NAME
from tnseg_desktop.store.backups import KEEP, list_backups


def _filled_store(root: Path, studies: int = 3) -> tuple[str, list[Path]]:
    """A store with accepted masks, closed (so it has a backup); returns its salt and mask files."""
    with AnnotationStore(root) as store:
        for k in range(studies):
            sid = store.add_study(make_meta(source_path=f"/data/cine{k}.dcm"), f"hash-{k}")
            store.accept(sid, 1, blob(40, 50, 20, 25, 6 + k))
        salt = store.deid_salt
    return salt, sorted((root / "masks").rglob("*.png"))


def _run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("how", ["empty", "deleted"])
def test_a_lost_database_is_not_recreated(capsys, how: str) -> None:
    root = paths.store_dir()
    salt, masks = _filled_store(root)
    db = root / DB_NAME
    if how == "empty":
        db.write_bytes(b"")
    else:
        db.unlink()
    code, out, err = _run_cli(capsys, "store", "info")
    assert code != 0 and "studies: 0" not in out
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert str(db) in lines[0] and ("empty" if how == "empty" else "missing") in lines[0]
    backup = list_backups(root)[0]
    assert str(backup) in lines[0] and "store restore" in lines[0]
    # nothing was made in its place, and the mask files are all still there
    assert (db.stat().st_size == 0) if how == "empty" else not db.exists()
    assert sorted((root / "masks").rglob("*.png")) == masks
    with pytest.raises(StoreDamagedError):
        AnnotationStore(root)

    code, out, err = _run_cli(capsys, "store", "restore")
    assert code == 0 and str(backup) in out, err
    with AnnotationStore(root) as store:
        assert len(store.studies()) == 3 and store.deid_salt == salt
        assert len(store.accepted_frames()) == 3
    if how == "empty":
        assert [p.stat().st_size for p in (root / "damaged").glob("*.sqlite3")] == [0]


def _damage_middle(db: Path, seed: int = 3) -> None:
    """Random bytes over a page in the middle of the file, as a disk or a stray write would leave it."""
    page = 4096
    n_pages = db.stat().st_size // page
    assert n_pages >= 6, n_pages
    rng = np.random.default_rng(seed)
    with open(db, "r+b") as fh:
        fh.seek((n_pages // 2) * page)
        fh.write(rng.integers(0, 256, page, dtype=np.uint8).tobytes())


def test_a_damaged_database_opens_read_only_with_the_backup_offered(capsys, tmp_path: Path) -> None:
    root = paths.store_dir()
    _filled_store(root, studies=40)
    backup = list_backups(root)[0]
    db = root / DB_NAME
    _damage_middle(db)
    raw = sqlite3.connect(str(db))
    try:
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] != "ok"
    except sqlite3.DatabaseError:
        pass  # malformed: also what the check at open must catch
    raw.close()

    store = AnnotationStore(root)
    assert store.read_only and "integrity check" in store.problem and str(backup) in store.problem
    with pytest.raises(StoreError, match="read-only"):
        store.add_study(make_meta(source_path="/data/new.dcm"), "hash-new")
    store.close()
    assert not any(p != backup for p in list_backups(root)), "a damaged store must not be backed up"

    code, out, err = _run_cli(capsys, "store", "info")
    assert code != 0
    assert len(err.strip().splitlines()) == 1 and str(db) in err and str(backup) in err
    code, out, err = _run_cli(capsys, "export", "--study", "1", "--format", "png", "--out", str(tmp_path / "x"))
    assert code != 0 and len(err.strip().splitlines()) == 1 and "integrity check" in err
    assert not (tmp_path / "x").exists()

    # restoring refuses a healthy store, and puts the backup in place of a damaged one
    code, out, err = _run_cli(capsys, "store", "restore")
    assert code == 0, err
    with AnnotationStore(root) as healthy:
        assert not healthy.read_only and len(healthy.studies()) == 40
    code, out, err = _run_cli(capsys, "store", "restore")
    assert code != 0 and "not damaged" in err


def test_backups_rotate_and_are_taken_only_after_writes(tmp_path: Path) -> None:
    for k in range(KEEP + 2):
        with AnnotationStore(tmp_path) as store:
            store.add_study(make_meta(source_path=f"/d/{k}.dcm"), f"h{k}")
    kept = list_backups(tmp_path)
    assert len(kept) == KEEP
    newest = sqlite3.connect(str(kept[0]))
    assert newest.execute("SELECT COUNT(*) FROM studies").fetchone()[0] == KEEP + 2
    newest.close()
    with AnnotationStore(tmp_path) as store:  # reading only: no new backup
        store.studies()
    assert list_backups(tmp_path) == kept


def test_a_new_folder_still_gets_a_new_store(tmp_path: Path) -> None:
    (tmp_path / DB_NAME).write_bytes(b"")  # an empty file in a folder that never held a store
    with AnnotationStore(tmp_path) as store:
        assert store.studies() == [] and not store.read_only
    assert (tmp_path / "STORE").is_file()
    os.unlink(tmp_path / DB_NAME)
    with pytest.raises(StoreDamagedError, match="missing"):
        AnnotationStore(tmp_path)  # the marker says a store was here
