"""How long the GUI thread stalls while models work: ``python bench/ui_responsiveness.py --json OUT``.

A timer on the GUI thread fires every 5 ms; the longest gap between two firings,
minus the 5 ms, is the longest time the window could not respond. Measured while
"Segment all frames" runs over a 100-frame loop (with playback on, so frames and
masks are drawn meanwhile) and while image embeddings are precomputed in the
background (a small random SAM, so the cost is the plumbing, not the encoder's size),
and while "Retrain on my edits" runs its worker process on 40 accepted frames
(playback on and a click refinement every 300 ms meanwhile, as a user would go on
working).

Other cases (e.g. a training job) plug in with :func:`measure_stall`::

    stall_ms = measure_stall(app, start=lambda: panel.start_training(), done=lambda: not panel.running)

Writes ``{"max_stall_ms": ..., "segment_all_max_stall_ms": ..., "precompute_max_stall_ms": ...,
"training_max_stall_ms": ...}``.
Goal: max_stall_ms <= 50.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from PySide6.QtCore import QElapsedTimer, Qt, QTimer  # noqa: E402

DDTI = REPO.parent / "shared" / "data" / "ddti" / "train" / "images"
PROBE_MS = 5


class StallProbe:
    """Records the longest gap between ticks of a 5 ms timer on the GUI thread."""

    def __init__(self, interval_ms: int = PROBE_MS) -> None:
        self.interval_ms = interval_ms
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(self._tick)
        self.clock = QElapsedTimer()
        self.last = 0
        self.max_gap_ms = 0.0
        self.gaps: list[float] = []

    def start(self) -> None:
        self.clock.start()
        self.last = 0
        self.max_gap_ms = 0.0
        self.gaps = []
        self.timer.start(self.interval_ms)

    def _tick(self) -> None:
        now = self.clock.nsecsElapsed() / 1e6
        gap = now - self.last
        self.last = now
        self.gaps.append(gap)
        self.max_gap_ms = max(self.max_gap_ms, gap)

    def stop(self) -> float:
        """The longest stall in ms (longest gap minus the interval)."""
        self.timer.stop()
        return max(0.0, self.max_gap_ms - self.interval_ms)


def measure_stall(app, start: Callable[[], object], done: Callable[[], bool], timeout_s: float = 600.0,
                  settle_s: float = 0.2) -> float:
    """Start a job, pump the event loop until ``done()``, return the GUI thread's longest stall in ms."""
    probe = StallProbe()
    end = time.monotonic() + settle_s
    while time.monotonic() < end:
        app.processEvents()
    probe.start()
    start()
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError("the job did not finish in time")
        app.processEvents()
        time.sleep(0.001)
    return probe.stop()


def build_loop(out_dir: Path, n_frames: int = 100) -> tuple[Path, list[np.ndarray]]:
    """A 100-frame cine from DDTI images and their true masks (synthetic frames when the data set is absent)."""
    from tnseg_desktop.io.cine_writer import write_cine_dicom

    names = sorted(DDTI.glob("*.png"))[:n_frames] if DDTI.is_dir() else []
    frames, masks = [], []
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:360, :560]
    for i in range(n_frames):
        if names:
            name = names[i % len(names)]
            img = cv2.resize(cv2.imread(str(name), cv2.IMREAD_GRAYSCALE), (560, 360), interpolation=cv2.INTER_AREA)
            m = cv2.imread(str(name.parent.parent / "masks" / name.name), cv2.IMREAD_GRAYSCALE)
            mask = cv2.resize(m, (560, 360), interpolation=cv2.INTER_NEAREST) > 0 if m is not None else np.zeros((360, 560), bool)
        else:
            img = rng.integers(0, 255, (360, 560), dtype=np.uint8)
            mask = (yy - 180) ** 2 + (xx - 280) ** 2 < 60 ** 2
            img[mask] //= 3
        frames.append(img)
        masks.append(mask)
    return Path(write_cine_dicom(frames, out_dir / "loop100.dcm", fps=25.0, pixel_spacing_mm=0.08)), masks


def _training_case(app, window, ctl, masks: list[np.ndarray], steps: int, threads: int | None) -> dict:
    """Accept 40 frames, press "Retrain on my edits" and keep working until the worker ends.

    ``threads`` None is what the app does: the worker uses every core but one, at a lower priority.
    """
    from tnseg_desktop.store import EditInfo
    from tnseg_desktop.model.device import threads_leaving_a_core
    from tnseg_desktop.training.retrain import RetrainSettings

    for i, m in enumerate(masks[:40]):
        ctl.store.accept(ctl.study_id, i, m, edit_info=EditInfo(tool="bench"))
    window.show_training_panel("retrain")
    panel = window.training_docks["retrain"].widget()
    panel.settings = RetrainSettings(steps=steps, threads=threads, train_config={"lr": 5e-4, "warmup": 5, "val_every": 1000, "batch": 8})
    panel.refresh()
    events: list[dict] = []
    panel.progressed.connect(events.append)
    ended: list[str] = []
    panel.finished.connect(lambda status, _msg: ended.append(status))
    clicker = QTimer()
    clicks = {"n": 0}

    def click() -> None:  # alternate positive and negative clicks near the frame's centre
        ctl.tool_click(180 + (clicks["n"] % 5) * 4, 280, clicks["n"] % 3 != 2)
        clicks["n"] += 1

    clicker.timeout.connect(click)

    def start() -> None:
        if not panel.start():
            raise RuntimeError(f"retraining did not start: {panel.summary.text()} {panel.status.text()}")
        window.play()
        clicker.start(300)

    t0 = time.monotonic()
    stall = measure_stall(app, start=start, done=lambda: bool(ended), timeout_s=1800)
    clicker.stop()
    window.pause()
    steps_done = max([e.get("step", 0) for e in events if e.get("event") == "step"], default=0)
    return {"training_max_stall_ms": round(stall, 1), "training_s": round(time.monotonic() - t0, 1),
            "training_status": ended[0], "training_steps": steps_done, "training_clicks_during": clicks["n"],
            "training_threads": threads or threads_leaving_a_core()}


def _lite():
    from tnseg_desktop.engine.lite_refiner import LiteRefiner
    from tnseg_desktop.model.lite import TnsegLite

    shipped = REPO / "models" / "tnseg-lite.safetensors"
    if shipped.is_file():
        from tnseg_desktop.model.lite_weights import load_lite

        return LiteRefiner(load_lite(shipped, "cpu"), "cpu"), "shipped tnseg-lite"
    import torch

    torch.manual_seed(0)
    return LiteRefiner(TnsegLite(), "cpu"), "tnseg-lite, default size, random weights"


def _sam():
    from tnseg_desktop.engine.sam_refiner import SamRefiner

    sys.path.insert(0, str(REPO / "tests"))  # the small random SAM is a test fixture
    from sam_small import small_sam

    return SamRefiner(small_sam(), name="sam-small-random")


def run(out_json: str | None = None, training_steps: int = 60, training_threads: int | None = None) -> dict:
    from tnseg_desktop.ui.app import get_application
    from tnseg_desktop.ui.offscreen_window import open_offscreen_window
    from tnseg_desktop.ui.model_provider import FixedModels

    app = get_application()
    result: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        os.environ.setdefault("TNSEG_DATA_DIR", str(tmp_path / "userdata"))
        os.environ.setdefault("TNSEG_CONFIG_DIR", str(tmp_path / "config"))
        cine, masks = build_loop(tmp_path)

        lite, lite_desc = _lite()
        window, ctl = open_offscreen_window(app, cine, FixedModels(auto=lite, refiner=lite), tmp_path / "store1")
        t0 = time.monotonic()
        result["segment_all_max_stall_ms"] = round(measure_stall(
            app, start=lambda: (window.play(), ctl.segment_all()), done=lambda: ctl._batch_job is None), 1)
        result["segment_all_s"] = round(time.monotonic() - t0, 1)
        result["segment_all_frames_done"] = sum(o.value != "none" for o in ctl.session.origins())
        window.pause()
        if training_steps > 0:
            result.update(_training_case(app, window, ctl, masks, training_steps, training_threads))
        ctl.shutdown()
        window.shutdown()

        sam = _sam()
        window, ctl = open_offscreen_window(app, cine, FixedModels(refiner=sam, refiner_name="sam-small-random"), tmp_path / "store2")
        t0 = time.monotonic()
        result["precompute_max_stall_ms"] = round(measure_stall(
            app, start=lambda: window.play(),
            done=lambda: ctl.precompute is not None and not ctl.precompute.running), 1)
        result["precompute_s"] = round(time.monotonic() - t0, 1)
        result["precompute_frames_done"] = ctl.precompute.done_count if ctl.precompute else 0
        window.pause()
        ctl.shutdown()
        window.shutdown()

    result["max_stall_ms"] = max(result[k] for k in ("segment_all_max_stall_ms", "precompute_max_stall_ms", "training_max_stall_ms") if k in result)
    result["frames"] = 100
    result["auto_model"] = lite_desc
    result["probe_interval_ms"] = PROBE_MS
    result["cpu_count"] = os.cpu_count()
    if out_json:
        Path(out_json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", dest="out", default=None, help="write the figures to this JSON file")
    ap.add_argument("--training-steps", type=int, default=60, help="steps of the retraining case (0 skips it)")
    ap.add_argument("--training-threads", type=int, default=None,
                    help="torch threads of the retraining worker (default: the app's own choice, every core but one)")
    args = ap.parse_args(argv)
    print(json.dumps(run(args.out, args.training_steps, args.training_threads), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
