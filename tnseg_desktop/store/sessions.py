"""App sessions: an open/closed-cleanly marker per running app, for crash recovery.

A session row is written when the app starts and marked clean when it closes.
A row left unclean by a process that no longer runs means a crash; its drafts
are what the next start offers to restore. A row of a process still running
(a second window) is not a crash and is left alone.
"""

from __future__ import annotations

import os
import socket
import sqlite3

from tnseg_desktop import __version__
from tnseg_desktop.store.connection import Database
from tnseg_desktop.store.records import os_user_name, utc_now


def start_session(db: Database) -> int:
    with db.write() as c:
        cur = c.execute(
            "INSERT INTO sessions (started_at, clean, pid, host, os_user, app_version) VALUES (?,0,?,?,?,?)",
            (utc_now(), os.getpid(), socket.gethostname(), os_user_name(), __version__),
        )
        return int(cur.lastrowid)


def end_session(db: Database, session_id: int) -> None:
    with db.write() as c:
        c.execute("UPDATE sessions SET clean = 1, ended_at = ? WHERE id = ?", (utc_now(), session_id))


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if os.name == "nt":
        import ctypes

        handle = ctypes.windll.kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        ctypes.windll.kernel32.CloseHandle(handle)
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def crashed_sessions(db: Database, current_session: int | None) -> list[sqlite3.Row]:
    """Unclean, not yet recovered sessions whose process is gone, newest first."""
    rows = db.query(
        "SELECT * FROM sessions WHERE clean = 0 AND recovered_at IS NULL AND id IS NOT ? ORDER BY id DESC",
        (current_session,),
    )
    host = socket.gethostname()
    # a session on another host cannot be checked; it counts as crashed (stores are meant to be local)
    return [r for r in rows if not (r["host"] == host and pid_alive(r["pid"]))]


def mark_recovered(db: Database, session_ids: list[int]) -> None:
    with db.write() as c:
        for sid in session_ids:
            c.execute("UPDATE sessions SET recovered_at = ?, ended_at = COALESCE(ended_at, ?) WHERE id = ?",
                      (utc_now(), utc_now(), sid))
