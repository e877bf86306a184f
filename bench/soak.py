"""Soak: the real app, thousands of random edits on a real cine, and kill -9 every few minutes.

``python bench/soak.py --minutes 30 --json OUT``

A child process runs the app as a user has it (MainWindow, attach_editing_for_app: the user's
store, the real models, the crash-recovery question, answered "Restore") on a cine of DDTI thyroid
frames, and drives the editing session through random operations: clicks, boxes, brush and eraser
strokes, undo, redo, frame changes and accepts. It prints ``SUBMIT`` when it asks for an accept and
``ACK`` when the app reports the frame "accepted and saved", with a hash of the mask. The parent
kills the child with SIGKILL after a random 1-4 minutes (half the kills wait for the next accept
to be submitted, so they land while it is written), starts it again on the same store, and at the
end checks that every acknowledged accept is in the store with exactly the mask that was
acknowledged, and that the store passes its integrity check.

Prints and writes: ops by kind, accepts submitted / acknowledged / lost, kills, starts, recovery
questions answered, integrity. Threads: the child runs with OMP_NUM_THREADS=1 (pin it with taskset).
Goal: 0 lost accepts.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DDTI = REPO.parent / "shared" / "data" / "ddti" / "val" / "images"
FRAMES = 24
SIZE = (360, 280)  # cols, rows of the cine


def mask_digest(mask) -> str:
    import numpy as np

    m = np.ascontiguousarray(np.asarray(mask, dtype=bool))
    return hashlib.sha256(f"{m.shape}".encode() + np.packbits(m).tobytes()).hexdigest()[:16]


def make_cine(path: Path) -> Path:
    import cv2

    from tnseg_desktop.io.cine_writer import write_cine_dicom

    files = sorted(DDTI.glob("*.png"))[:FRAMES]
    if len(files) < FRAMES:
        raise SystemExit(f"soak: needs {FRAMES} DDTI frames in {DDTI}")
    frames = [cv2.resize(cv2.imread(str(p), cv2.IMREAD_GRAYSCALE), SIZE, interpolation=cv2.INTER_AREA) for p in files]
    return write_cine_dicom(frames, path, fps=20.0, pixel_spacing_mm=0.08)


# --- the child: the app, driven at random -------------------------------------------------------------

def child(cine: Path, seed: int) -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import numpy as np
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    from tnseg_desktop.errors import UserFacingError
    from tnseg_desktop.ui.app import get_application
    from tnseg_desktop.ui.editing_controller import attach_editing_for_app
    from tnseg_desktop.ui.main_window import MainWindow

    rng = random.Random(seed)

    def say(*parts: object) -> None:
        print(*parts, flush=True)

    app = get_application()

    def answer_questions() -> None:  # the crash-recovery question: Restore, as its default button says
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            button = getattr(box, "restore_button", None) or box.defaultButton()
            say("RECOVERY", " ".join(box.text().split())[:80])
            if button is not None:
                button.click()
            else:
                box.accept()

    answerer = QTimer()
    answerer.timeout.connect(answer_questions)
    answerer.start(100)
    window = MainWindow()
    window.resize(1100, 750)
    window.show()
    ctl = attach_editing_for_app(window)
    window.close_guards.clear()  # the parent kills; nobody answers "save before closing?"
    pending: dict[int, list[str]] = {}

    def on_accepted(index: int) -> None:
        queue = pending.get(index) or ["?"]
        say("ACK", index, queue.pop(0))

    ctl.accepted.connect(on_accepted)
    ctl.message.connect(lambda text: say("MSG", " ".join(str(text).split())[:120]))
    window.open_path(str(cine))
    started = time.monotonic()
    while (ctl.session is None or ctl.study_id is None or window.displayed_index < 0) and time.monotonic() - started < 120:
        app.processEvents()
        time.sleep(0.01)
    if ctl.session is None or ctl.study_id is None:
        say("STARTFAIL the cine did not open with a store within 120 s")
        sys.exit(3)
    say("READY", ctl.study_id)
    session = ctl.session
    n = len(session.origins())
    rows, cols = session.shape(0)
    ops = ["click"] * 20 + ["box"] * 8 + ["brush"] * 20 + ["erase"] * 10 + ["undo"] * 10 + ["redo"] * 5 + \
          ["accept"] * 15 + ["frame"] * 12

    def point() -> tuple[int, int]:
        return rng.randrange(rows // 5, rows - rows // 5), rng.randrange(cols // 5, cols - cols // 5)

    def stroke() -> list[tuple[int, int]]:
        r, c = point()
        return [(max(0, min(rows - 1, r + k * rng.randint(-4, 4))), max(0, min(cols - 1, c + k * rng.randint(-4, 4))))
                for k in range(rng.randint(2, 12))]

    def step() -> None:
        op = rng.choice(ops)
        i = window.displayed_index
        if i < 0:
            return
        try:
            if op == "click":
                r, c = point()
                session.add_click(i, r, c, positive=rng.random() < 0.75)
            elif op == "box":
                r, c = point()
                h, w = rng.randint(20, rows // 3), rng.randint(20, cols // 3)
                session.set_box(i, (max(0, r - h // 2), max(0, c - w // 2), min(rows, r + h // 2), min(cols, c + w // 2)))
            elif op == "brush":
                session.paint_stroke(i, stroke(), rng.randint(2, 10))
            elif op == "erase":
                session.erase_stroke(i, stroke(), rng.randint(2, 8))
            elif op == "undo":
                session.undo()
            elif op == "redo":
                session.redo()
            elif op == "frame":
                window.go_to(rng.randrange(n))
            elif op == "accept":
                mask = session.mask(i)
                if mask is None or not np.asarray(mask).any():
                    op = "accept-skipped-empty"
                else:
                    digest = mask_digest(mask)
                    pending.setdefault(i, []).append(digest)
                    say("SUBMIT", i, digest)
                    if ctl.accept() is None:
                        pending[i].pop()
                        op = "accept-refused"
            say("OP", op)
        except UserFacingError as exc:  # e.g. a model still loading: the app says so; the soak goes on
            say("OP", f"{op}-refused", " ".join(exc.one_line().split())[:100])

    ticker = QTimer()
    ticker.timeout.connect(step)
    ticker.start(int(os.environ.get("SOAK_TICK_MS", "30")))
    app.exec()


# --- the parent: start, kill -9, start again, verify ------------------------------------------------

class Run:
    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:  # type: ignore[union-attr]
            self.lines.append(line.rstrip("\n"))

    def count(self, prefix: str) -> int:
        return sum(1 for line in list(self.lines) if line.startswith(prefix))


def verify(data_dir: Path, acks: list[tuple[int, str]]) -> dict:
    import numpy as np

    from tnseg_desktop.store import AnnotationStore

    with AnnotationStore(data_dir / "store") as store:
        integrity = store.integrity_check()
        (study,) = store.studies()
        lost = []
        stored: dict[int, set[str]] = {}
        edits = 0
        for edit in (e for i in range(FRAMES) for e in store.edit_history(study.id, i)):
            edits += 1  # each opens: load_mask raises on a missing or damaged file
            stored.setdefault(edit.frame_index, set()).add(mask_digest(np.asarray(store.load_mask(edit.final_mask_id))))
        for index, digest in acks:
            if digest not in stored.get(index, set()):
                lost.append((index, digest))
        drafts = len(store.drafts())
    return {"integrity": integrity, "lost": lost, "edits_in_store": edits, "drafts_in_store": drafts}


def parent(args: argparse.Namespace) -> dict:
    rng = random.Random(args.seed)
    work = Path(args.work or tempfile.mkdtemp(prefix="tnseg-soak-"))
    data_dir = work / "data"
    cine = work / "soak_cine.dcm"
    if not cine.exists():
        make_cine(cine)
    env = dict(os.environ, TNSEG_DATA_DIR=str(data_dir), QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(REPO),
               OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    deadline = time.monotonic() + args.minutes * 60
    ops: Counter[str] = Counter()
    acks: list[tuple[int, str]] = []
    totals = Counter()
    errors: list[str] = []
    k = 0
    while time.monotonic() < deadline:
        k += 1
        proc = subprocess.Popen([sys.executable, __file__, "--child", str(cine), "--seed", str(args.seed * 1000 + k)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=str(REPO))
        run = Run(proc)
        life = min(rng.uniform(args.kill_min, args.kill_max), max(1.0, deadline - time.monotonic()))
        end = time.monotonic() + life
        while time.monotonic() < end and proc.poll() is None:
            time.sleep(0.05)
        how = "timer"
        if proc.poll() is None and rng.random() < 0.5:  # land the kill while an accept is being written
            submitted = run.count("SUBMIT")
            wait_until = time.monotonic() + 30
            while run.count("SUBMIT") == submitted and time.monotonic() < wait_until and proc.poll() is None:
                time.sleep(0.001)
            time.sleep(rng.uniform(0.0, 0.03))
            how = "during-accept"
        exited = proc.poll()
        if exited is None:
            proc.send_signal(signal.SIGKILL)
            totals["kills"] += 1
            totals[f"kills_{how}"] += 1
        proc.wait()
        run.reader.join(timeout=5)
        err = proc.stderr.read() if proc.stderr else ""
        if exited is not None:
            errors.append(f"child {k} exited by itself with {exited}: {err.strip()[-400:]}")
        if "Traceback" in err:
            errors.append(f"child {k} printed a traceback: {err[err.index('Traceback'):][:600]}")
        totals["starts"] += 1
        totals["ready"] += run.count("READY")
        totals["recovery_questions"] += run.count("RECOVERY")
        totals["submitted"] += run.count("SUBMIT")
        for line in run.lines:
            parts = line.split()
            if parts[:1] == ["OP"] and len(parts) > 1:
                ops[parts[1]] += 1
            elif parts[:1] == ["ACK"] and len(parts) == 3:
                acks.append((int(parts[1]), parts[2]))
        print(f"run {k}: {life:.0f} s, kill {how}, {run.count('OP')} ops, {run.count('ACK')} accepts acknowledged",
              file=sys.stderr, flush=True)
    result = verify(data_dir, acks)
    out = {
        "minutes": args.minutes, "threads": env["OMP_NUM_THREADS"], "starts": totals["starts"],
        "ready": totals["ready"], "kills": totals["kills"], "kills_during_accept": totals["kills_during-accept"],
        "recovery_questions": totals["recovery_questions"], "ops": dict(ops), "ops_total": sum(ops.values()),
        "accepts_submitted": totals["submitted"], "accepts_acknowledged": len(acks),
        "accepts_lost": len(result["lost"]), "lost": result["lost"][:20], "integrity": result["integrity"],
        "edits_in_store": result["edits_in_store"], "drafts_in_store": result["drafts_in_store"],
        "child_errors": errors[:10], "work": str(work),
    }
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--kill-min", type=float, default=60.0, help="shortest life of a child before kill -9 (s)")
    ap.add_argument("--kill-max", type=float, default=240.0, help="longest life (s)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", default=None, help="folder for the cine and the store (default: a new temp folder)")
    ap.add_argument("--json", default=None)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(Path(args.child), args.seed)
        return 0
    out = parent(args)
    text = json.dumps(out, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text)
    return 0 if out["accepts_lost"] == 0 and out["integrity"] == "ok" and out["ready"] == out["starts"] else 1


if __name__ == "__main__":
    sys.exit(main())
