"""Per-frame image embeddings, bounded in memory (LRU by bytes) and optionally on disk.

A key is the frame's content digest plus the model's id (the weights file's
sha256, or a random model's id), so a changed model can never hit an old
entry. ``get_or_compute`` holds a per-key lock: the background precompute and
a click that both need frame k compute it once, while work on other keys
never waits.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

log = logging.getLogger(__name__)

DEFAULT_MEMORY_BYTES = 512 * 1024 * 1024  # ~128 SAM embeddings (4 MiB each)
DEFAULT_DISK_BYTES = 2 * 1024 * 1024 * 1024


def frame_digest(frame: np.ndarray) -> str:
    """sha1 of the frame's shape, dtype and pixels."""
    h = hashlib.sha1()
    h.update(f"{frame.shape}|{frame.dtype.str}|".encode())
    h.update(np.ascontiguousarray(frame).data)
    return h.hexdigest()


@dataclass(frozen=True)
class CacheKey:
    frame: str  # frame_digest
    model: str  # model id

    def file_name(self) -> str:
        model = hashlib.sha1(self.model.encode()).hexdigest()[:16]
        return f"{model}_{self.frame}.npy"


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    disk_hits: int = 0
    evictions: int = 0
    computed: int = 0


class EmbeddingCache:
    def __init__(self, max_bytes: int = DEFAULT_MEMORY_BYTES, disk_dir: str | os.PathLike | None = None, disk_max_bytes: int = DEFAULT_DISK_BYTES) -> None:
        self.max_bytes = int(max_bytes)
        self.disk_dir = Path(disk_dir) if disk_dir is not None else None
        self.disk_max_bytes = int(disk_max_bytes)
        self.stats = CacheStats()
        self._mem: OrderedDict[CacheKey, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._key_locks: dict[CacheKey, threading.Lock] = {}
        self._generation = 0
        if self.disk_dir is not None:
            self.disk_dir.mkdir(parents=True, exist_ok=True)

    # -- memory -------------------------------------------------------------
    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._mem)

    def keys(self) -> list[CacheKey]:
        with self._lock:
            return list(self._mem)

    def _put_memory(self, key: CacheKey, value: np.ndarray) -> None:
        with self._lock:
            old = self._mem.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
            if value.nbytes > self.max_bytes:
                return
            self._mem[key] = value
            self._bytes += value.nbytes
            while self._bytes > self.max_bytes:
                _, dropped = self._mem.popitem(last=False)
                self._bytes -= dropped.nbytes
                self.stats.evictions += 1

    def contains(self, key: CacheKey) -> bool:
        """In memory or on disk (does not count as a hit or a miss)."""
        with self._lock:
            if key in self._mem:
                return True
        path = self._disk_path(key)
        return path is not None and path.is_file()

    def get(self, key: CacheKey) -> np.ndarray | None:
        with self._lock:
            value = self._mem.get(key)
            if value is not None:
                self._mem.move_to_end(key)
                self.stats.hits += 1
                return value
        value = self._read_disk(key)
        with self._lock:
            if value is None:
                self.stats.misses += 1
                return None
            self.stats.hits += 1
            self.stats.disk_hits += 1
        self._put_memory(key, value)
        return value

    def put(self, key: CacheKey, value: np.ndarray) -> None:
        value = np.ascontiguousarray(value)
        value.setflags(write=False)
        self._put_memory(key, value)
        self._write_disk(key, value)

    def get_or_compute(self, key: CacheKey, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """The cached value, or ``compute()`` run once even when several threads ask at once."""
        value = self.get(key)
        if value is not None:
            return value
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
            generation = self._generation
        with key_lock:
            with self._lock:
                value = self._mem.get(key)
                if value is not None:  # computed by whoever held the key lock before us
                    self._mem.move_to_end(key)
                    return value
            value = compute()
            with self._lock:
                self.stats.computed += 1
                stale = generation != self._generation
            if not stale:
                self.put(key, value)
        with self._lock:
            if self._key_locks.get(key) is key_lock and not key_lock.locked():
                del self._key_locks[key]
        return value

    def invalidate(self, disk: bool = False) -> None:
        """Drop every entry in memory (the model changed); with ``disk`` also the files."""
        with self._lock:
            self._mem.clear()
            self._bytes = 0
            self._generation += 1
        if disk and self.disk_dir is not None:
            for p in self.disk_dir.glob("*.npy"):
                p.unlink(missing_ok=True)

    # -- disk ---------------------------------------------------------------
    def _disk_path(self, key: CacheKey) -> Path | None:
        return None if self.disk_dir is None else self.disk_dir / key.file_name()

    def _read_disk(self, key: CacheKey) -> np.ndarray | None:
        path = self._disk_path(key)
        if path is None or not path.is_file():
            return None
        try:
            value = np.load(path, allow_pickle=False)
            os.utime(path)  # the file's mtime is its LRU age
        except (OSError, ValueError) as exc:
            log.warning("dropping unreadable cached embedding %s (%s)", path.name, exc)
            path.unlink(missing_ok=True)
            return None
        value.setflags(write=False)
        return value

    def _write_disk(self, key: CacheKey, value: np.ndarray) -> None:
        path = self._disk_path(key)
        if path is None or path.is_file():
            return
        tmp: str | None = None
        try:
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".part", dir=path.parent)
            with os.fdopen(fd, "wb") as fh:
                np.save(fh, value, allow_pickle=False)
            os.replace(tmp, path)
        except OSError as exc:  # a full disk must not break a click
            log.warning("could not write cached embedding %s (%s)", path.name, exc)
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
            return
        self._trim_disk()

    def disk_bytes(self) -> int:
        if self.disk_dir is None:
            return 0
        return sum(p.stat().st_size for p in self.disk_dir.glob("*.npy") if p.is_file())

    def _trim_disk(self) -> None:
        assert self.disk_dir is not None
        entries = []
        for p in self.disk_dir.glob("*.npy"):
            try:
                st = p.stat()
            except FileNotFoundError:
                continue
            entries.append((st.st_mtime_ns, st.st_size, p))
        total = sum(size for _, size, _ in entries)
        for _, size, p in sorted(entries, key=lambda e: e[0]):
            if total <= self.disk_max_bytes:
                break
            p.unlink(missing_ok=True)
            total -= size
