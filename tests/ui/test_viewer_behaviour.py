"""The viewer's behaviour on an in-memory cine with known pixels and timing."""

from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from .fake_cine import FakeOpener, frame_pattern


def open_and_wait(qtbot, window, path: str = "/data/cine.dcm") -> None:
    with qtbot.waitSignal(window.source_opened, timeout=5000):
        window.open_path(path)
    qtbot.waitUntil(lambda: window.displayed_index == 0, timeout=5000)


def test_opens_shows_frame_zero_and_fills_the_panel(qtbot, make_window, fake_opener):
    w = make_window(fake_opener)
    open_and_wait(qtbot, w)
    assert np.array_equal(w.canvas.displayed_image(), frame_pattern(0))
    assert w.transport.counter.text() == "1 / 20"
    values = {k: v.text() for k, v in w.info_panel.values.items()}
    assert values["Modality"] == "US"
    assert values["Frames"] == "20"
    assert values["Frame rate"] == "25 fps"
    assert values["Calibration"] == "uncalibrated"
    assert values["Patient"] == "DOE, JANE"
    assert values["Study date"] == "2024-01-31"
    assert "cine.dcm" in w.windowTitle()


def test_keys_step_frames_and_wrap(qtbot, make_window, fake_opener):
    w = make_window(fake_opener)
    open_and_wait(qtbot, w)
    qtbot.keyClick(w, Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: w.displayed_index == 1)
    qtbot.keyClick(w, Qt.Key.Key_Period)
    qtbot.waitUntil(lambda: w.displayed_index == 2)
    assert np.array_equal(w.canvas.displayed_image(), frame_pattern(2))
    assert w.transport.counter.text() == "3 / 20"
    qtbot.keyClick(w, Qt.Key.Key_Comma)
    qtbot.waitUntil(lambda: w.displayed_index == 1)
    qtbot.keyClick(w, Qt.Key.Key_End)
    qtbot.waitUntil(lambda: w.displayed_index == 19)
    qtbot.keyClick(w, Qt.Key.Key_Right)  # loops back to the start
    qtbot.waitUntil(lambda: w.displayed_index == 0)
    qtbot.keyClick(w, Qt.Key.Key_Left)
    qtbot.waitUntil(lambda: w.displayed_index == 19)
    qtbot.keyClick(w, Qt.Key.Key_Home)
    qtbot.waitUntil(lambda: w.displayed_index == 0)


def test_slider_moves_the_frame(qtbot, make_window, fake_opener):
    w = make_window(fake_opener)
    open_and_wait(qtbot, w)
    w.transport.slider.setValue(7)
    qtbot.waitUntil(lambda: w.displayed_index == 7)
    assert w.transport.counter.text() == "8 / 20"


def test_space_plays_and_pauses(qtbot, make_window):
    w = make_window(FakeOpener(n_frames=20, fps=50.0))
    open_and_wait(qtbot, w)
    qtbot.keyClick(w, Qt.Key.Key_Space)
    assert w.is_playing
    qtbot.waitUntil(lambda: w.displayed_index >= 3, timeout=3000)
    qtbot.keyClick(w, Qt.Key.Key_Space)
    assert not w.is_playing
    stopped_at = w.wanted_index  # a frame asked for just before the pause still arrives
    qtbot.waitUntil(lambda: w.displayed_index == stopped_at)
    qtbot.wait(200)
    assert w.displayed_index == stopped_at


def test_playback_loops(qtbot, make_window):
    w = make_window(FakeOpener(n_frames=5, fps=40.0))
    open_and_wait(qtbot, w)
    seen: list[int] = []
    w.frame_displayed.connect(seen.append)
    w.play()
    # after the last frame the loop starts again (frames may be skipped under load, never replayed backwards otherwise)
    qtbot.waitUntil(lambda: any(b < a for a, b in zip(seen, seen[1:])), timeout=5000)
    w.pause()
    assert len(set(seen)) >= 3


def test_slow_decode_never_blocks_the_gui_thread(qtbot, make_window):
    opener = FakeOpener(n_frames=10, decode_delay_s=0.15)
    w = make_window(opener)
    open_and_wait(qtbot, w)
    opener.opened[0].decode_delay_s = 0.3
    w.pause()
    w.go_to(9)  # the decoder is busy elsewhere: this must return at once
    t0 = time.perf_counter()
    w.go_to(8)
    assert time.perf_counter() - t0 < 0.15  # a blocking call would take the 0.3 s decode
    qtbot.waitUntil(lambda: w.displayed_index == 8, timeout=5000)
    assert np.array_equal(w.canvas.displayed_image(), frame_pattern(8))


def test_bad_file_shows_one_sentence_then_a_good_file_opens(qtbot, make_window, fake_opener):
    w = make_window(fake_opener)
    with qtbot.waitSignal(w.error_reported, timeout=5000) as sig:
        w.open_path("/data/bad.dcm")
    assert sig.args[0] == "this file is not a DICOM file or an image."
    box = w.last_message_box
    assert box is not None and box.isVisible()
    assert box.text() == sig.args[0]
    box.close()
    open_and_wait(qtbot, w)
    assert w.frame_count == 20


def test_a_bad_file_keeps_the_open_one_on_screen(qtbot, make_window, fake_opener):
    w = make_window(fake_opener)
    w.error_dialogs = False
    open_and_wait(qtbot, w)
    w.go_to(4)
    qtbot.waitUntil(lambda: w.displayed_index == 4)
    with qtbot.waitSignal(w.error_reported, timeout=5000):
        w.open_path("/data/bad.dcm")
    assert w.displayed_index == 4 and w.frame_count == 20


def test_an_undecodable_frame_is_reported_once(qtbot, make_window):
    w = make_window(FakeOpener(n_frames=6, fail_frames=frozenset({2, 3})))
    w.error_dialogs = False
    messages: list[str] = []
    w.error_reported.connect(messages.append)
    open_and_wait(qtbot, w)
    w.go_to(2)
    qtbot.waitUntil(lambda: len(messages) == 1, timeout=3000)
    assert messages == ["frame 3 is damaged."]
    assert not w.canvas.displayed_image().any() and w.displayed_index == -1
    w.go_to(5)
    qtbot.waitUntil(lambda: w.displayed_index == 5)
    assert len(messages) == 1


def test_opening_another_file_stops_the_old_decoder(qtbot, make_window):
    opener = FakeOpener(n_frames=50, decode_delay_s=0.01)
    w = make_window(opener)
    open_and_wait(qtbot, w, "/data/a.dcm")
    open_and_wait(qtbot, w, "/data/b.dcm")
    assert opener.opened[0].closed.wait(2.0)
    assert w.meta.source_path == "/data/b.dcm"


def test_dropping_a_file_opens_it(qtbot, make_window, fake_opener, tmp_path):
    w = make_window(fake_opener)
    target = tmp_path / "dropped.dcm"
    target.write_bytes(b"x")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(target))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(w.source_opened, timeout=5000) as sig:
        w.dropEvent(event)
    assert sig.args[0] == str(target)


def test_recent_files_are_remembered(qtbot, make_window, fake_opener):
    w = make_window(fake_opener)
    open_and_wait(qtbot, w, "/data/a.dcm")
    open_and_wait(qtbot, w, "/data/b.dcm")
    titles = [a.text() for a in w.recent_menu.actions() if a.text() and not a.isSeparator()]
    assert titles[:2] == ["/data/b.dcm", "/data/a.dcm"]
    w2 = make_window(fake_opener)
    assert [a.text() for a in w2.recent_menu.actions()][:2] == ["/data/b.dcm", "/data/a.dcm"]


def test_brightness_contrast_set_display_levels(qtbot, make_window, fake_opener):
    w = make_window(fake_opener)
    open_and_wait(qtbot, w)
    w.display_controls.brightness.setValue(50)
    low, high = w.canvas.levels()
    assert high - low == 255 and low < 0
    w.display_controls.contrast.setValue(100)
    low, high = w.canvas.levels()
    assert abs((high - low) - 255 / 4) < 1e-6
    qtbot.keyClick(w, Qt.Key.Key_R)
    assert w.canvas.levels() == (0.0, 255.0)


def test_pixel_mapping_under_zoom_and_pan(qtbot, make_window, fake_opener):
    w = make_window(fake_opener)
    open_and_wait(qtbot, w)
    c = w.canvas
    qtbot.wait(50)
    checked = 0
    for zoom in (1.0, 3.0):
        c.fit()
        c.zoom_by(zoom)
        c.view_box.translateBy(x=2.0, y=-1.0)
        qtbot.wait(20)
        for row, col in ((0, 0), (10, 20), (20, 30), (24, 35), (30, 40)):
            centre = c.image_to_widget(col + 0.5, row + 0.5)
            if not c.rect().contains(centre.toPoint()):
                continue
            scene = c.mapToScene(centre.toPoint())
            assert c.pixel_at(scene) == (row, col)
            checked += 1
    assert checked >= 6
    assert c.pixel_at(c.mapToScene(QPoint(-500, -500))) is None


def test_window_layout_is_remembered(qtbot, make_window, fake_opener):
    from tnseg_desktop.ui.window_state import restore_window_state

    w = make_window(fake_opener)
    w.remember_layout = True
    w.resize(700, 520)  # inside the offscreen screen (800x600), so nothing is clamped
    w.splitter.setSizes([420, 280])
    qtbot.wait(10)
    sizes = w.splitter.sizes()
    w.close()
    w2 = make_window(fake_opener)
    assert restore_window_state(w2, w2.splitter)
    qtbot.wait(10)
    assert (w2.width(), w2.height()) == (700, 520)
    assert w2.splitter.sizes() == sizes
