"""Accept saves to a real store, closing with unaccepted edits asks, crash recovery, no-weights banner, text prompts."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from tnseg_desktop.engine.measurements import measure
from tnseg_desktop.engine.session import Origin
from tnseg_desktop.store import AnnotationStore
from tnseg_desktop.ui.editing_controller import attach_editing
from tnseg_desktop.ui.model_provider import IMPORT_HINT, FixedModels, MissingModel

from .editing_helpers import DiscRefiner, TinyTextSeg, pixel_pos, tiny_lite_refiner
from .fake_cine import FakeOpener

PATH = "/data/loop.dcm"


def _open(make_window, qtbot, store, provider, guard=False, ask_recovery=False):
    window = make_window(FakeOpener(n_frames=6, fps=25.0))
    ctl = attach_editing(window, provider=provider, store=store, ask_recovery=ask_recovery)
    if not guard:
        window.close_guards.remove(ctl.confirm_close)
    window.open_path(PATH)
    qtbot.waitUntil(lambda: window.displayed_index == 0 and ctl.study_id is not None, timeout=5000)
    window.activateWindow()
    qtbot.wait(50)  # the first fit of the view settles
    return window, ctl


def _paint(qtbot, window, ctl, row=20, col=30, radius=5):
    ctl.set_tool("brush")
    ctl.brush_size.set(radius)
    qtbot.wait(QApplication.doubleClickInterval() + 50)  # never a double click with an earlier click
    qtbot.mouseClick(window.canvas.viewport(), Qt.MouseButton.LeftButton, pos=pixel_pos(window.canvas, row, col))


def _answer(text: str, seen: list) -> None:
    """Click the button called ``text`` of the modal box once it is up."""

    def click() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(50, click)
            return
        seen.append(box.text())
        next(b for b in box.buttons() if b.text() == text).click()

    QTimer.singleShot(50, click)


def test_enter_accepts_and_writes_the_real_store(make_window, qtbot, tmp_path):
    store = AnnotationStore(tmp_path / "store")
    window, ctl = _open(make_window, qtbot, store, FixedModels(refiner=DiscRefiner()))
    _paint(qtbot, window, ctl)
    expected = ctl.session.mask(0)
    with qtbot.waitSignal(ctl.accepted, timeout=5000):
        qtbot.keyClick(window, Qt.Key.Key_Return)
    assert ctl.session.origin(0) is Origin.ACCEPTED
    assert ctl.strip.states()[0].name == "ACCEPTED"
    db = sqlite3.connect(tmp_path / "store" / "annotations.sqlite3")
    rows = db.execute("SELECT e.tool, f.frame_index, m.file, m.area_px FROM edits e JOIN frames f ON f.id = e.frame_id "
                      "JOIN masks m ON m.id = e.final_mask_id").fetchall()
    db.close()
    assert len(rows) == 1 and rows[0][0] == "paint" and rows[0][1] == 0 and rows[0][3] == int(expected.sum())
    assert (tmp_path / "store" / rows[0][2]).is_file()
    assert np.array_equal(store.load_accepted(ctl.study_id, 0), expected)
    ctl.shutdown()


def test_accept_saves_the_measurement_with_the_frame(make_window, qtbot, tmp_path):
    store = AnnotationStore(tmp_path / "store")
    window, ctl = _open(make_window, qtbot, store, FixedModels(refiner=DiscRefiner()))
    _paint(qtbot, window, ctl, radius=6)
    expected = measure(ctl.session.mask(0), None).to_dict()
    with qtbot.waitSignal(ctl.accepted, timeout=5000):
        qtbot.keyClick(window, Qt.Key.Key_Return)
    db = sqlite3.connect(tmp_path / "store" / "annotations.sqlite3")
    [(text,)] = db.execute("SELECT measurements_json FROM edits").fetchall()
    db.close()
    saved = json.loads(text)
    assert saved == json.loads(json.dumps(expected))
    assert saved["unit"] == "px" and saved["area_px"] > 0 and saved["diameter"] > 0 and saved["perpendicular"] > 0
    assert set(saved) >= {"area_px", "area_mm2", "diameter", "perpendicular", "unit"}
    [a] = store.accepted_frames(study_id=ctl.study_id)
    assert a.measurements == saved
    ctl.shutdown()


def test_close_with_unaccepted_edits_asks_and_both_answers_work(make_window, qtbot, tmp_path):
    store = AnnotationStore(tmp_path / "store")
    window, ctl = _open(make_window, qtbot, store, FixedModels(refiner=DiscRefiner()), guard=True)
    _paint(qtbot, window, ctl)
    seen: list[str] = []
    _answer("Keep Editing", seen)
    assert window.close() is False
    assert window.isVisible() and "not accepted" in seen[0]
    _answer("Close", seen)
    assert window.close() is True
    assert len(seen) == 2
    # the unaccepted edit is kept as a draft
    assert [d.frame_index for d in store.drafts(study_id=ctl.study_id)] == [0]
    ctl.shutdown()


def test_no_question_when_everything_is_accepted(make_window, qtbot, tmp_path):
    store = AnnotationStore(tmp_path / "store")
    window, ctl = _open(make_window, qtbot, store, FixedModels(refiner=DiscRefiner()), guard=True)
    _paint(qtbot, window, ctl)
    with qtbot.waitSignal(ctl.accepted, timeout=5000):
        ctl.accept()
    assert ctl.confirm_close() is True
    ctl.shutdown()


def test_crash_recovery_is_offered_and_drafts_come_back(make_window, qtbot, tmp_path):
    store_dir = tmp_path / "store"
    window, ctl = _open(make_window, qtbot, AnnotationStore(store_dir), FixedModels(refiner=DiscRefiner()))
    _paint(qtbot, window, ctl, 10, 10, 3)
    ctl.flush_drafts().finished.wait(5)
    crashed = ctl.store
    # a crash: the session is never closed, and its process is gone
    crashed.db.conn.execute("UPDATE sessions SET pid = 999999999")
    crashed.db.conn.commit()
    ctl.store = None
    ctl.shutdown()

    seen: list[str] = []
    _answer("Restore", seen)
    window2, ctl2 = _open(make_window, qtbot, AnnotationStore(store_dir), FixedModels(refiner=DiscRefiner()),
                          ask_recovery=True)
    qtbot.waitUntil(lambda: len(seen) == 1, timeout=5000)
    assert "did not close normally" in seen[0]
    window2.open_path(PATH + "?again")  # the same pixels: the same study, whatever the path
    qtbot.waitUntil(lambda: ctl2.session is not None and ctl2.session.origin(0) is Origin.PAINTED, timeout=5000)
    assert ctl2.session.mask(0)[10, 10]
    ctl2.shutdown()


def test_without_weights_the_banner_says_what_is_missing_and_painting_measuring_export_work(make_window, qtbot, tmp_path):
    missing = [MissingModel("tnseg-lite", "automatic masks and click refinement"), MissingModel("clip-tnseg", "text prompts")]
    store = AnnotationStore(tmp_path / "store")
    window, ctl = _open(make_window, qtbot, store, FixedModels(missing=missing))
    qtbot.waitUntil(ctl.banner.isVisible, timeout=5000)
    text = ctl.banner.label.text()
    assert "tnseg-lite" in text and "clip-tnseg" in text and IMPORT_HINT in text
    assert not ctl.model_panel.segment_all_button.isEnabled()
    assert ctl.segment_all() is None
    ctl.set_tool("click")
    qtbot.wait(QApplication.doubleClickInterval() + 50)
    qtbot.mouseClick(window.canvas.viewport(), Qt.MouseButton.LeftButton, pos=pixel_pos(window.canvas, 20, 20))
    assert "refiner" in window.statusBar().currentMessage()
    _paint(qtbot, window, ctl, 24, 32, 6)
    qtbot.waitUntil(lambda: ctl.measurement_panel.text != "")
    assert "px²" in ctl.measurement_panel.area.text()
    assert ctl.lines.diameter.isVisible()
    with qtbot.waitSignal(ctl.accepted, timeout=5000):
        ctl.accept()
    job = ctl.export_menu.run_png(str(tmp_path / "png"))
    qtbot.waitUntil(lambda: "Wrote 1 mask PNG" in window.statusBar().currentMessage(), timeout=5000)
    assert job is not None and (tmp_path / "png").is_dir() and any((tmp_path / "png").iterdir())
    offered = Path(ctl.export_menu.default_seg_path())  # named by the study, never by the source file
    assert offered.name == f"study{ctl.study_id}_seg.dcm" and Path(window.meta.source_path).stem not in offered.name
    ctl.shutdown()


def test_text_prompt_with_a_tiny_random_model_and_segment_all_with_tiny_lite(make_window, qtbot, tmp_path):
    lite = tiny_lite_refiner()
    store = AnnotationStore(tmp_path / "store")
    window, ctl = _open(make_window, qtbot, store, FixedModels(auto=lite, refiner=lite, clip=TinyTextSeg()))
    qtbot.waitUntil(lambda: ctl.session.refiner is lite, timeout=5000)
    edit = ctl.text_field.edit
    qtbot.keyClick(window, Qt.Key.Key_T)
    assert edit.hasFocus()
    edit.setText("solid   nodule")
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: ctl.session.prompts(0).text == "solid nodule", timeout=10000)
    assert ctl.session.origin(0) is Origin.REFINED  # Enter in the field ran the prompt, it did not accept
    assert ctl.session.mask(0) is not None and ctl.session.mask(0).shape == (48, 64)
    assert ctl.text_field.history()[0] == "solid nodule"
    assert "thyroid nodule" in ctl.text_field.suggestions()
    ctl.segment_all()
    qtbot.waitUntil(lambda: ctl.jobs.batch_job is None, timeout=30000)
    assert all(o is Origin.AUTO for o in ctl.session.origins()[1:])
    ctl.shutdown()
