"""Opening the SQLite database safely for several threads and processes.

WAL lets readers run while one writer writes; every write takes the write lock
up front (``BEGIN IMMEDIATE``) so two writers queue on the busy timeout instead
of failing half-way. synchronous=FULL makes a committed accept survive a power
cut, not only a crash of the app.
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from tnseg_desktop.store.errors import StoreCorruptError, StoreError, StoreLockedError

_LOCK_WORDS = ("database is locked", "database table is locked", "database is busy")


def _is_lock_error(exc: sqlite3.Error) -> bool:
    return any(w in str(exc).lower() for w in _LOCK_WORDS)


def locked_error(db_path: Path, timeout_s: float) -> StoreLockedError:
    return StoreLockedError(
        f"The annotation store stayed locked by another program for {timeout_s:g} seconds; "
        "close the other tnseg-desktop window or wait for it to finish, then try again.",
        str(db_path),
    )


class Database:
    """One sqlite3 connection shared by the threads of one process, guarded by a lock."""

    def __init__(self, db_path: Path, busy_timeout_s: float = 10.0, read_only_reason: str | None = None) -> None:
        """``read_only_reason`` given: open without write access, and every write says why."""
        self.path = Path(db_path)
        self.busy_timeout_s = busy_timeout_s
        self.read_only_reason = read_only_reason
        self.wrote = False  # a write was committed through this handle (the store backs up on close then)
        self._lock = threading.RLock()
        try:
            if read_only_reason is None:
                self.conn = sqlite3.connect(
                    str(self.path), timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
                )
            else:
                self.conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=busy_timeout_s,
                                            isolation_level=None, check_same_thread=False)
            self.conn.row_factory = sqlite3.Row
            self.conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            if read_only_reason is None:
                self.conn.execute("PRAGMA journal_mode = WAL")
                self.conn.execute("PRAGMA synchronous = FULL")
            self.conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            raise self.translate(exc) from exc

    def translate(self, exc: sqlite3.Error) -> StoreError:
        if _is_lock_error(exc):
            return locked_error(self.path, self.busy_timeout_s)
        if isinstance(exc, sqlite3.DatabaseError) and "not a database" in str(exc).lower():
            return StoreError("The annotation store file is damaged or is not a tnseg-desktop store.", str(self.path))
        if isinstance(exc, sqlite3.DatabaseError) and "malformed" in str(exc).lower():
            return StoreCorruptError("The annotation store file is damaged (database disk image is malformed).", str(self.path))
        return StoreError(f"The annotation store could not be used ({exc}).", str(self.path))

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: committed when the block ends, rolled back on any error."""
        if self.read_only_reason is not None:
            raise StoreError(f"The annotation store is open read-only ({self.read_only_reason}); nothing can be saved.",
                             str(self.path))
        with self._lock:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise self.translate(exc) from exc
            try:
                yield self.conn
                self.conn.execute("COMMIT")
                self.wrote = True
            except sqlite3.Error as exc:
                self._rollback()
                raise self.translate(exc) from exc
            except BaseException:
                self._rollback()
                raise

    def _rollback(self) -> None:
        try:
            self.conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    def query(self, sql: str, params: tuple | dict = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self.conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise self.translate(exc) from exc

    def query_one(self, sql: str, params: tuple | dict = ()) -> sqlite3.Row | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def close(self) -> None:
        with self._lock:
            self.conn.close()
