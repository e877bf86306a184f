"""A damaged annotation store never stops the window: viewing goes on, a banner offers the last good copy."""

from __future__ import annotations

import sqlite3

from tests.store.test_store_safety import _damage_middle, _filled_store
from tnseg_desktop import paths
from tnseg_desktop.store import AnnotationStore
from tnseg_desktop.store.annotation_store import DB_NAME
from tnseg_desktop.store.backups import list_backups
from tnseg_desktop.ui.editing_controller import attach_editing_for_app
from tnseg_desktop.ui.model_provider import FixedModels

from .editing_helpers import DiscRefiner
from .fake_cine import FakeOpener


def _window(make_window):
    window = make_window(FakeOpener(n_frames=6, fps=25.0))
    window.error_dialogs = False
    ctl = attach_editing_for_app(window, provider=FixedModels(refiner=DiscRefiner()))
    window.close_guards.remove(ctl.confirm_close)
    return window, ctl


def test_a_damaged_page_leaves_viewing_working_and_offers_the_backup(make_window, qtbot) -> None:
    root = paths.store_dir()
    _filled_store(root, studies=40)
    backup = list_backups(root)[0]
    _damage_middle(root / DB_NAME)

    window, ctl = _window(make_window)
    assert ctl.store is None
    assert ctl.store_banner.isVisible() and "integrity check" in ctl.store_banner.label.text()
    assert str(backup) in ctl.store_banner.label.text() and ctl.store_banner.restore_button.isVisible()
    window.open_path("/data/loop.dcm")
    qtbot.waitUntil(lambda: window.displayed_index == 0, timeout=5000)
    window.go_to(3)
    qtbot.waitUntil(lambda: window.displayed_index == 3, timeout=5000)

    ctl.store_banner.restore_button.click()
    qtbot.waitUntil(lambda: ctl.study_id is not None, timeout=10000)
    assert not ctl.store_banner.isVisible() and not ctl.store.read_only
    assert len(ctl.store.studies()) == 41  # the 40 of the backup and the cine on screen
    assert list((root / "damaged").glob("*.sqlite3"))
    ctl.shutdown()


def test_a_store_damaged_past_the_check_at_open_still_lets_the_window_start(make_window, qtbot) -> None:
    root = paths.store_dir()
    _filled_store(root, studies=2)
    raw = sqlite3.connect(str(root / DB_NAME))
    raw.execute("DROP TABLE sessions")  # a sound file whose tables are not what the store wrote
    raw.commit()
    raw.close()
    with AnnotationStore(root) as check:
        assert check.problem is None  # quick_check passes: only using it shows the damage

    window, ctl = _window(make_window)
    # found when the session starts, on the store thread
    qtbot.waitUntil(lambda: ctl.store is None and ctl.store_banner.isVisible(), timeout=5000)
    assert "sessions" in ctl.store_banner.label.text()
    window.open_path("/data/loop.dcm")
    qtbot.waitUntil(lambda: window.displayed_index == 0, timeout=5000)
    ctl.shutdown()


def test_the_app_removes_what_a_killed_run_left_and_says_so(make_window, qtbot) -> None:
    import os
    import time

    from tests.store.conftest import blob
    from tnseg_desktop.store.cleanup import MIN_AGE_S

    store = AnnotationStore(paths.store_dir())
    orphan = store.root / store.files.put(blob(40, 50, 10, 10, 5))[0]  # its row never committed
    store.close()
    half_model = paths.user_models_dir() / ".tnseg-lite-u9.safetensors.k1.tmp"
    half_model.write_bytes(b"half")
    old = time.time() - MIN_AGE_S - 60
    for p in (orphan, half_model):
        os.utime(p, (old, old))

    window, ctl = _window(make_window)
    qtbot.waitUntil(lambda: not orphan.exists() and not half_model.exists(), timeout=10000)
    qtbot.waitUntil(lambda: "1 temporary file(s) and 1 unreferenced mask file(s)"
                    in window.statusBar().currentMessage(), timeout=5000)
