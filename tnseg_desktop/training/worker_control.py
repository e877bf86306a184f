"""The parent's side of the training worker process, without Qt: its command line, its progress lines, stopping it.

The worker (training/worker.py) writes one JSON object a line on stdout; its
stderr goes to a log file next to the job. ``run_worker`` runs it to the end
with subprocess (scripts, the benchmark, tests); the GUI runs the same command
with QProcess and reads the lines with ``parse_line``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from tnseg_desktop.training.job import EXIT_CANCELLED, EXIT_OK, stop_file_for

Event = dict[str, Any]


@dataclass
class WorkerOutcome:
    exit_code: int
    events: list[Event]
    stderr_tail: str = ""

    def last(self, kind: str) -> Event | None:
        return next((e for e in reversed(self.events) if e.get("event") == kind), None)

    @property
    def done(self) -> Event | None:
        return self.last("done") if self.exit_code == EXIT_OK else None

    @property
    def cancelled(self) -> bool:
        return self.exit_code == EXIT_CANCELLED or self.last("cancelled") is not None

    def error_message(self) -> str:
        err = self.last("error")
        if err is not None:
            return str(err.get("message"))
        if self.exit_code == EXIT_OK:
            return "The training process finished without reporting a result."
        return f"The training process ended unexpectedly (exit code {self.exit_code})."


def request_stop(job_path: str | Path, terminate: Callable[[], None]) -> None:
    """Ask the worker to stop: the STOP file (works everywhere) and SIGTERM (immediate where it exists)."""
    try:
        stop_file_for(job_path).touch()
    except OSError:
        pass
    terminate()


def worker_command(job_path: str | Path) -> list[str]:
    return [sys.executable, "-m", "tnseg_desktop.training.worker", str(job_path)]


def parse_line(line: str | bytes) -> Event | None:
    """One progress record from the worker, or None for anything that is not one."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", "replace")
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        obj = json.loads(line)
    except json.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) and "event" in obj else None


def _tail(path: Path, chars: int = 4000) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-chars:]
    except OSError:
        return ""


def run_worker(job_path: str | Path, on_event: Callable[[Event], None] | None = None, cancel: threading.Event | None = None,
               env: dict[str, str] | None = None, log_path: str | Path | None = None) -> WorkerOutcome:
    """Run the worker process to the end; ``cancel`` set -> SIGTERM. Never raises for the worker's failures."""
    log = Path(log_path) if log_path else Path(job_path).with_name("worker.log")
    events: list[Event] = []
    with open(log, "ab") as err:
        proc = subprocess.Popen(worker_command(job_path), stdout=subprocess.PIPE, stderr=err, env=env)
        watcher = None
        if cancel is not None:
            def watch() -> None:
                while proc.poll() is None:
                    if cancel.wait(0.2):
                        request_stop(job_path, proc.terminate)
                        return

            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
        assert proc.stdout is not None
        for raw in proc.stdout:
            ev = parse_line(raw)
            if ev is None:
                continue
            events.append(ev)
            if on_event is not None:
                on_event(ev)
        code = proc.wait()
        if watcher is not None:
            watcher.join(timeout=1.0)
    return WorkerOutcome(code, events, _tail(log))
