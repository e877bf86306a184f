"""The viewer's main window: canvas, transport bar, side panel, menus, status bar."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QElapsedTimer, QPoint, QRect, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QGroupBox,
    QLabel,
    QMainWindow,
    QMessageBox,
    QScrollArea,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from tnseg_desktop import __version__
from tnseg_desktop.io.types import CineMeta
from tnseg_desktop.ui import recent_files
from tnseg_desktop.ui.background import Deadline
from tnseg_desktop.ui.canvas import CineCanvas
from tnseg_desktop.ui.cine_feed import CineFeed, CineSource, Opener, default_opener
from tnseg_desktop.ui.device_probe import DeviceProbe
from tnseg_desktop.ui.display_controls import DisplayControls
from tnseg_desktop.ui.info_panel import InfoPanel
from tnseg_desktop.ui.messages import user_message
from tnseg_desktop.ui.retrain_panel import install_training_ui
from tnseg_desktop.ui.theme import CANVAS
from tnseg_desktop.ui.transport_bar import TransportBar
from tnseg_desktop.ui.viewer_menus import ViewerMenus
from tnseg_desktop.ui.window_state import save_window_state

if TYPE_CHECKING:
    from tnseg_desktop.ui.editing_controller import EditingController

log = logging.getLogger(__name__)

APP_TITLE = "tnseg-desktop"
SHUTDOWN_WAIT_S = 30.0  # for the background open/decode and the device probe to end at shutdown
OPEN_FILE_FILTER = "All files (*);;DICOM (*.dcm *.dicom *.DCM);;Images (*.png *.jpg *.jpeg *.bmp *.tif *.tiff)"


class MainWindow(QMainWindow, ViewerMenus):
    """Opens one source at a time and shows it frame by frame (actions and menus: ui/viewer_menus.py)."""

    source_opened = Signal(str)  # path, once its metadata is shown
    frame_displayed = Signal(int)  # index of the frame now on the canvas
    error_reported = Signal(str)  # the sentence shown to the user
    playing_changed = Signal(bool)

    def __init__(self, opener: Opener = default_opener, probe_device: bool = True) -> None:
        super().__init__()
        self._opener = opener
        self._feed: CineFeed | None = None  # the source on screen
        self._opening: CineFeed | None = None  # a source being opened; replaces _feed when it opens
        self._retired: list[CineFeed] = []  # cancelled, maybe still opening or decoding a frame; joined at shutdown
        self._meta: CineMeta | None = None
        self._n_frames = 0
        self._wanted = -1  # the frame asked for (slider, keys, playback)
        self._displayed = -1  # the frame on the canvas
        self._reported_frame_error: CineFeed | None = None
        self.last_error: BaseException | None = None
        self.last_message_box: QMessageBox | None = None
        self.error_dialogs = True
        self.remember_layout = False  # the interactive app saves size and split on close
        self.cine: CineSource | None = None  # the open source (thread-safe frame access for editing)
        # each returns False to keep the window open (e.g. the user cancelled over unaccepted edits)
        self.close_guards: list = []
        self.editing: EditingController | None = None  # the correction workflow, once attach_editing adds it

        self.setWindowTitle(APP_TITLE)
        self.setAcceptDrops(True)
        self._build_widgets()
        self._build_actions()
        self._build_menus()
        self._build_status_bar()
        install_training_ui(self)  # Training menu: retrain on my edits, model versions

        self._play_timer = QTimer(self)
        self._play_timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._play_timer.timeout.connect(self._on_play_tick)
        self._play_clock = QElapsedTimer()
        self._play_origin = 0
        self._fps = 30.0

        self.device_probe: DeviceProbe | None = None
        if probe_device:
            self.device_probe = DeviceProbe()
            self.device_probe.found.connect(lambda text: self.device_label.setText(f"Compute: {text}"))
            # after the first paint, so the window appears before torch loads
            QTimer.singleShot(0, self.device_probe.start)

    # --- construction -----------------------------------------------------
    def _build_widgets(self) -> None:
        self.canvas = CineCanvas(background=CANVAS)
        self.canvas.hover_pixel.connect(self._on_hover_pixel)
        self.empty_hint = QLabel("Open an ultrasound DICOM cine, a series folder or an image\n"
                                 "File › Open (Ctrl+O), or drop it here")
        self.empty_hint.setObjectName("EmptyHint")
        self.empty_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.view_stack = QStackedWidget()
        self.view_stack.addWidget(self.empty_hint)
        self.view_stack.addWidget(self.canvas)

        self.transport = TransportBar()
        self.transport.frame_requested.connect(self._on_slider_frame)
        self.transport.step_requested.connect(self.step)
        self.transport.play_toggled.connect(self.toggle_play)

        viewer = QWidget()
        v = QVBoxLayout(viewer)
        v.setContentsMargins(0, 0, 0, 0)
        v.setSpacing(0)
        v.addWidget(self.view_stack, 1)
        v.addWidget(self.transport)
        self._viewer_layout = v

        self.info_panel = InfoPanel()
        self.display_controls = DisplayControls()
        self.display_controls.levels_changed.connect(self.canvas.set_levels)
        side = QWidget()
        side.setObjectName("SidePanel")
        s = QVBoxLayout(side)
        s.setContentsMargins(12, 4, 12, 12)
        s.addWidget(self.info_panel)
        display_box = _group("Display", self.display_controls)
        s.addWidget(display_box)
        s.addStretch(1)
        self._side_layout = s
        scroll = QScrollArea()
        scroll.setWidget(side)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setMinimumWidth(260)
        self.side_panel = scroll

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(viewer)
        splitter.addWidget(scroll)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 0)
        splitter.setCollapsible(0, False)
        splitter.setSizes([1000, 300])
        self.splitter = splitter
        self.setCentralWidget(splitter)

    # --- opening ----------------------------------------------------------
    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open DICOM cine or image", self._dialog_dir(), OPEN_FILE_FILTER)
        if path:
            self.open_path(path)

    def choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open DICOM series folder", self._dialog_dir())
        if path:
            self.open_path(path)

    def _dialog_dir(self) -> str:
        recent = recent_files.load_recent()
        return os.path.dirname(recent[0]) if recent else os.path.expanduser("~")

    def open_path(self, path: str) -> None:
        """Open a file or folder in the background; the current one stays until it opens."""
        path = os.fspath(path)
        if self._opening is not None:
            self._retire(self._opening)
        feed = CineFeed(path, self._opener)
        feed.opened.connect(self._on_opened)
        feed.open_failed.connect(self._on_open_failed)
        feed.frame_ready.connect(self._on_frame_ready)
        feed.frame_failed.connect(self._on_frame_failed)
        self._opening = feed
        self.statusBar().showMessage(f"Opening {os.path.basename(path.rstrip('/')) or path}…")
        feed.start()

    def _retire(self, feed: CineFeed) -> None:
        feed.cancel()
        self._retired = [f for f in self._retired if not f.wait(0) and f is not feed] + [feed]
        for sig in (feed.opened, feed.open_failed, feed.frame_ready, feed.frame_failed):
            try:
                sig.disconnect()
            except (RuntimeError, TypeError):
                pass

    def _on_opened(self, feed: CineFeed, cine: CineSource) -> None:
        if feed is not self._opening:
            return
        self._opening = None
        self.pause()
        if self._feed is not None:
            self._retire(self._feed)
        self._feed = feed
        self.cine = cine
        self._meta = cine.meta
        self._n_frames = len(cine)
        self._wanted = self._displayed = -1
        self._reported_frame_error = None
        # never show the previous patient's frame next to this file's details
        self.canvas.clear()
        self.view_stack.setCurrentWidget(self.canvas)
        self.info_panel.set_meta(self._meta)
        self.transport.set_frame_count(self._n_frames, self._meta.fps)
        self._set_source_actions_enabled(True)
        self.act_play.setEnabled(self._n_frames > 1)
        name = os.path.basename(feed.path.rstrip("/\\")) or feed.path
        self.setWindowTitle(f"{name} — {APP_TITLE}")
        self.statusBar().clearMessage()
        self._refresh_recent_menu(recent_files.add_recent(feed.path))
        self.go_to(0)
        self.source_opened.emit(feed.path)

    def _on_open_failed(self, feed: CineFeed, exc: BaseException) -> None:
        if feed is not self._opening:
            return
        self._opening = None
        self.statusBar().clearMessage()
        self.report_error(exc, title="Cannot open file", path=feed.path)

    # --- frames -----------------------------------------------------------
    @property
    def frame_count(self) -> int:
        return self._n_frames

    @property
    def meta(self) -> CineMeta | None:
        return self._meta

    @property
    def displayed_index(self) -> int:
        """Index of the frame on the canvas; -1 before the first one is decoded."""
        return self._displayed

    @property
    def wanted_index(self) -> int:
        return self._wanted

    def go_to(self, index: int) -> None:
        """Show frame ``index`` now if decoded, else as soon as the decoder has it."""
        if self._feed is None or self._n_frames == 0:
            return
        index = max(0, min(self._n_frames - 1, index))
        self._wanted = index
        self.transport.set_current(index)
        self._feed.set_focus(index)
        frame = self._feed.frame(index)
        if frame is not None:
            self._display(index, frame)
            return
        failure = self._feed.failure(index)
        if failure is not None:
            self._show_frame_failure(self._feed, index, failure)

    def step(self, delta: int) -> None:
        """Previous/next frame, wrapping around like the loop does."""
        if self._n_frames == 0:
            return
        self.pause()
        base = self._wanted if self._wanted >= 0 else 0
        self.go_to((base + delta) % self._n_frames)

    def _jump(self, index: int) -> None:
        self.pause()
        self.go_to(index)

    def _on_slider_frame(self, index: int) -> None:
        self.pause()
        self.go_to(index)

    def _display(self, index: int, frame: np.ndarray) -> None:
        self.canvas.set_frame(frame)
        self._displayed = index
        self.frame_displayed.emit(index)

    def _on_frame_ready(self, feed: CineFeed, index: int) -> None:
        if feed is not self._feed:
            return
        if feed.capacity:
            self.cache_label.setText(f"Decoded {len(feed.cache)} / {self._n_frames}")
        if index == self._wanted and index != self._displayed:
            frame = feed.frame(index)
            if frame is not None:
                self._display(index, frame)

    def _on_frame_failed(self, feed: CineFeed, index: int, exc: BaseException) -> None:
        if feed is not self._feed:
            return
        if index == self._wanted:
            self._show_frame_failure(feed, index, exc)
        else:  # found while prefetching: say so quietly, the box comes if the user goes there
            self.statusBar().showMessage(f"Frame {index + 1} could not be decoded.", 5000)

    def _show_frame_failure(self, feed: CineFeed, index: int, exc: BaseException) -> None:
        # never leave a neighbouring frame on screen under this frame's number
        self.canvas.blank()
        self._displayed = -1
        if self._reported_frame_error is feed:  # one box per file, not one per frame
            self.statusBar().showMessage(f"Frame {index + 1} could not be decoded.", 5000)
            return
        self._reported_frame_error = feed
        self.report_error(exc, title=f"Cannot show frame {index + 1}", path=feed.path)

    # --- playback ---------------------------------------------------------
    @property
    def is_playing(self) -> bool:
        return self._play_timer.isActive()

    def toggle_play(self) -> None:
        if self.is_playing:
            self.pause()
        else:
            self.play()

    def play(self) -> None:
        if self._n_frames < 2 or self.is_playing or self._meta is None:
            return
        fps = self._meta.fps if self._meta.fps and self._meta.fps > 0 else 30.0
        self._fps = fps
        # tick at twice the frame rate; the frame shown follows the clock, so a slow
        # decode drops frames instead of slowing the loop down
        self._play_timer.start(max(5, int(500.0 / fps)))
        self._play_clock.start()
        self._play_origin = max(0, self._wanted)
        self.transport.set_playing(True)
        self.playing_changed.emit(True)

    def pause(self) -> None:
        if not self.is_playing:
            return
        self._play_timer.stop()
        self.transport.set_playing(False)
        self.playing_changed.emit(False)

    def _on_play_tick(self) -> None:
        elapsed_frames = int(self._play_clock.elapsed() * self._fps / 1000.0)
        target = (self._play_origin + elapsed_frames) % self._n_frames
        if target != self._wanted:
            self.go_to(target)

    # --- errors -----------------------------------------------------------
    def report_error(self, exc: BaseException, title: str = "Error", path: str | None = None) -> None:
        """Tell the user in one sentence; the window keeps running."""
        self.last_error = exc
        message = user_message(exc)
        self.error_reported.emit(message)
        if not self.error_dialogs:
            return
        box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self)
        if path:
            box.setInformativeText(os.path.basename(path.rstrip("/\\")) or path)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self._place_clear_of_hint(box)
        box.open()  # not exec(): no nested event loop, decoding and playback go on
        self.last_message_box = box

    def hint_text_rect(self) -> QRect | None:
        """Where the empty window's "Open an ultrasound DICOM cine..." text lies, in global coordinates."""
        hint = self.empty_hint
        if self.view_stack.currentWidget() is not hint or not hint.isVisible():
            return None
        local = hint.fontMetrics().boundingRect(hint.contentsRect(), int(hint.alignment()), hint.text())
        return QRect(hint.mapToGlobal(local.topLeft()), local.size())

    def _place_clear_of_hint(self, box: QMessageBox) -> None:
        # a dialog is centred on the window, right over the hint text; a window manager may move it,
        # but without one it stays there and hides both: put it below the text (above when there is no room)
        text = self.hint_text_rect()
        if text is None:
            return
        box.adjustSize()
        size = box.sizeHint().expandedTo(box.size())
        view = QRect(self.view_stack.mapToGlobal(QPoint(0, 0)), self.view_stack.size())
        x = view.center().x() - size.width() // 2
        y = text.bottom() + 24
        if y + size.height() > view.bottom():
            y = max(view.top(), text.top() - 24 - size.height())
        box.move(x, y)

    # --- extension points (editing, retraining) ---------------------------
    def add_side_widget(self, title: str, widget: QWidget, before_display: bool = False) -> QWidget:
        """Add a titled group to the side panel (above Display when ``before_display``)."""
        box = _group(title, widget)
        index = 1 if before_display else self._side_layout.count() - 1  # after the info panel / before the stretch
        self._side_layout.insertWidget(index, box)
        return box

    def add_banner(self, widget: QWidget) -> None:
        """Show ``widget`` as a full-width strip above the image."""
        self._viewer_layout.insertWidget(0, widget)

    def cached_frame(self, index: int) -> np.ndarray | None:
        """The decoded frame if the background decoder has it (never blocks)."""
        return self._feed.frame(index) if self._feed is not None else None

    # --- small things -----------------------------------------------------
    def _on_hover_pixel(self, row: int, col: int) -> None:
        image = self.canvas.displayed_image()
        if row < 0 or image is None:
            self.pixel_label.setText("")
            return
        value = image[row, col]
        shown = ", ".join(str(int(v)) for v in value) if np.ndim(value) else str(int(value))
        self.pixel_label.setText(f"x {col}  y {row}  value {shown}")

    def show_models_dialog(self) -> None:
        """Help › Models: the model files' status; the welcome screen is refreshed when it closes."""
        from tnseg_desktop.ui.models_dialog import ModelsDialog

        dialog = ModelsDialog(self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        welcome = getattr(self, "welcome", None)
        if welcome is not None:
            dialog.finished.connect(welcome.refresh)
        dialog.open()
        self.models_dialog = dialog

    def _about(self) -> None:
        QMessageBox.about(self, f"About {APP_TITLE}",
                          f"{APP_TITLE} {__version__}\nThyroid nodule segmentation for ultrasound cine loops.")

    # --- drag and drop ----------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if _local_paths(event):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:  # noqa: N802
        if _local_paths(event):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        paths = _local_paths(event)
        if paths:
            event.acceptProposedAction()
            self.open_path(paths[0])

    # --- shutdown ---------------------------------------------------------
    def shutdown(self, timeout: float = SHUTDOWN_WAIT_S) -> None:
        """Stop playback, background decoding and the device probe, and join their threads (idempotent).

        A thread still running at interpreter exit can abort the process, so each is joined; an open or a
        frame decode in progress cannot be interrupted, hence the bounded wait.
        """
        self._play_timer.stop()
        for feed in (self._opening, self._feed):
            if feed is not None:
                self._retire(feed)
        self._opening = self._feed = None
        deadline = Deadline(timeout)
        for feed in self._retired:
            feed.wait(deadline.left())
        self._retired = [f for f in self._retired if not f.wait(0)]
        if self.device_probe is not None:
            self.device_probe.stop(deadline.left())

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        if not all(guard() for guard in list(self.close_guards)):
            event.ignore()
            return
        if self.remember_layout:
            save_window_state(self, self.splitter)
        self.shutdown()
        super().closeEvent(event)


def _group(title: str, widget: QWidget) -> QWidget:
    box = QGroupBox(title)
    lay = QVBoxLayout(box)
    lay.addWidget(widget)
    return box


def _local_paths(event) -> list[str]:
    mime = event.mimeData()
    if not mime.hasUrls():
        return []
    return [u.toLocalFile() for u in mime.urls() if u.isLocalFile()]
