""""Retrain on my edits" at a new site, in the real window: screenshots of the automatic mask before and after.

    taskset -c 1 env OMP_NUM_THREADS=1 python bench/busi_walkthrough.py --out DIR [--n 50] [--view-cache DIR]

1. A fresh user data folder. ``--n`` busi_dev frames (breast ultrasound, the
   edit range of ``bench/retrain_gain.py``'s split by case number) are
   accepted in the user's store with their true masks, as box edits.
2. The app as a user has it (MainWindow, attach_editing_for_app: the real
   models and that store, the Training menu) opens a cine made of busi_dev
   test-range frames of one size, never trained on.
3. ``before.png``: the automatic mask on the first test frame; the Dice of the
   automatic mask on every test frame of the cine is printed.
4. Training › Retrain on My Edits…, Start. While the worker runs, the user
   keeps working: the displayed frame changes and a click lands every 2 s;
   the longest gap between 10 ms GUI timer ticks is recorded.
5. When the worker has finished and the promoted version is loaded, the
   automatic masks are recomputed: ``after.png`` and the Dice again.

Prints and writes ``DIR/walkthrough.json``: models before/after, Dice per test
frame before/after, the gate's message, minutes, the longest GUI stall.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

SHARED = REPO.parent / "shared" / "data"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def test_cine(folder: Path, test_ids: list[str], limit: int):
    """The most common frame size among the test frames, written as an image-folder cine; (folder, samples)."""
    import cv2

    from tnseg_desktop.training.data import load_folder
    from retrain_gain import subset

    samples = subset(load_folder(SHARED / "busi_dev"), test_ids)
    shape = Counter(s.image.shape for s in samples).most_common(1)[0][0]
    chosen = [s for s in samples if s.image.shape == shape][:limit]
    folder.mkdir(parents=True)
    for k, s in enumerate(chosen):
        cv2.imwrite(str(folder / f"frame{k:04d}.png"), s.image)
    return folder, chosen


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--test-frames", type=int, default=8)
    ap.add_argument("--view-cache", default=None)
    ap.add_argument("--timeout-min", type=float, default=30)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="busi-walkthrough-"))
    os.environ["TNSEG_DATA_DIR"] = str(work / "userdata")
    os.environ["TNSEG_CONFIG_DIR"] = str(work / "config")
    os.environ.setdefault("TNSEG_REPLAY_DATA", str(SHARED / "ddti"))
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    if args.view_cache:
        os.environ["TNSEG_VIEW_CACHE"] = str(Path(args.view_cache).resolve())

    import numpy as np
    from PySide6.QtCore import QElapsedTimer, QTimer

    from retrain_gain import busi_split, enter_edits, subset
    from tnseg_desktop import paths
    from tnseg_desktop.store import AnnotationStore
    from tnseg_desktop.training.data import load_folder
    from tnseg_desktop.training.metrics import dice
    from tnseg_desktop.ui.app import get_application
    from tnseg_desktop.ui.editing_controller import attach_editing_for_app
    from tnseg_desktop.ui.main_window import MainWindow

    edit_ids, test_ids = busi_split(SHARED / "busi_dev", args.n)
    store = AnnotationStore(paths.store_dir())
    n_edits = enter_edits(store, subset(load_folder(SHARED / "busi_dev"), edit_ids), work / "edit_cines")
    store.close()
    cine, truth = test_cine(work / "test_cine", test_ids, args.test_frames)
    log(f"{n_edits} BUSI edits accepted in {paths.store_dir()}; test cine of {len(truth)} frames {truth[0].image.shape}")

    app = get_application()

    def wait(cond, timeout_s: float, what: str) -> None:
        t0 = time.monotonic()
        while not cond():
            if time.monotonic() - t0 > timeout_s:
                raise SystemExit(f"walkthrough: {what} did not happen within {timeout_s:.0f} s")
            app.processEvents()
            time.sleep(0.01)

    window = MainWindow()
    window.resize(1280, 800)
    window.show()
    ctl = attach_editing_for_app(window)
    window.close_guards.clear()
    wait(lambda: ctl.models.auto is not None, 300, "the models loading")
    window.open_path(str(cine))
    wait(lambda: ctl.session is not None and window.displayed_index == 0, 60, "the test cine opening")

    def auto_masks(tag: str) -> list[float]:
        """Segment all frames (the Model panel's button) with the models in use, then score each automatic mask."""
        wait(lambda: not ctl.busy, 300, f"the models settling ({tag})")
        job = ctl.segment_all()
        wait(lambda: job is None or (job.finished.is_set() and not ctl.busy), 600, f"segment all ({tag})")
        scores = []
        for i, s in enumerate(truth):
            window.go_to(i)
            wait(lambda i=i: window.displayed_index == i and ctl.session.auto_mask_of(i) is not None, 60,
                 f"the automatic mask of frame {i} ({tag})")
            scores.append(round(float(dice(ctl.session.auto_mask_of(i), s.mask)), 4))
        return scores

    def shot(name: str) -> None:
        window.go_to(0)
        wait(lambda: window.displayed_index == 0, 20, "frame 0 shown")
        t0 = time.monotonic()
        while time.monotonic() - t0 < 1.0:
            app.processEvents()
            time.sleep(0.02)
        window.canvas.fit()
        app.processEvents()
        window.grab().save(str(out / name), "PNG")

    model_before = ctl.models.auto_name
    before = auto_masks("before")
    shot("before.png")
    log(f"before ({model_before}): Dice {np.mean(before):.3f} {before}")

    window.show_training_panel("retrain")
    panel = window.training_docks["retrain"].widget()
    wait(lambda: panel.plan is not None, 60, "the retraining plan")
    log(f"plan: {panel.summary.text()}")
    finished: dict = {}
    panel.finished.connect(lambda status, message: finished.update(status=status, message=message))
    swapped: dict = {}
    ctl.models_ready.connect(lambda: swapped.update(at=time.monotonic()))
    ticks = QElapsedTimer()
    ticks.start()
    stall = {"max_ms": 0.0, "last": 0}

    def tick() -> None:
        now = ticks.elapsed()
        if stall["last"]:
            stall["max_ms"] = max(stall["max_ms"], now - stall["last"] - 10)
        stall["last"] = now

    timer = QTimer()
    timer.timeout.connect(tick)
    timer.start(10)
    t_start = time.monotonic()
    if not panel.start():
        raise SystemExit(f"walkthrough: the retraining did not start: {panel.summary.text()}")
    user_ops = 0
    next_op = time.monotonic() + 2
    while "status" not in finished:
        if time.monotonic() - t_start > args.timeout_min * 60:
            panel.cancel()
            raise SystemExit("walkthrough: the retraining did not finish in time (cancelled)")
        if time.monotonic() >= next_op:  # the user keeps working while it trains
            window.go_to((window.displayed_index + 1) % len(truth))
            rows, cols = truth[0].image.shape
            if ctl.session is not None and user_ops % 3 == 0:
                ctl.session.add_click(window.displayed_index, rows // 2, cols // 2, positive=True)
                ctl.session.undo()
            user_ops += 1
            next_op = time.monotonic() + 2
        app.processEvents()
        time.sleep(0.005)
    minutes = (time.monotonic() - t_start) / 60
    timer.stop()
    log(f"retraining {finished['status']} in {minutes:.1f} min: {finished['message']}")
    if finished["status"] == "promoted":
        wait(lambda: "at" in swapped, 120, "the promoted model loading")
    after = auto_masks("after")
    shot("after.png")
    model_after = ctl.models.auto_name
    log(f"after ({model_after}): Dice {np.mean(after):.3f} {after}")
    result = {
        "edits": n_edits, "test_frames": len(truth), "frame_shape": list(truth[0].image.shape),
        "model_before": model_before, "model_after": model_after,
        "dice_before": before, "dice_after": after,
        "dice_before_mean": round(float(np.mean(before)), 4), "dice_after_mean": round(float(np.mean(after)), 4),
        "retrain_status": finished["status"], "retrain_message": finished["message"], "minutes": round(minutes, 2),
        "user_ops_during_training": user_ops, "longest_gui_stall_ms": round(stall["max_ms"], 1),
        "command": "python bench/busi_walkthrough.py " + " ".join(sys.argv[1:]),
    }
    (out / "walkthrough.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    window.shutdown()
    ctl.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
