"""Fetching a registry model from its official address, only when the user asks.

The file is written to ``<user models>/<file>.part`` and continued with an
HTTP Range request when a previous attempt stopped; it is installed only after
its size and sha256 match the registry entry.
"""

from __future__ import annotations

import hashlib
import os
import socket
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Callable

from tnseg_desktop.file_hash import CHUNK
from tnseg_desktop.model import registry
from tnseg_desktop.model.safe_load import WeightsFileError, load_state_dict
from tnseg_desktop.paths import user_models_dir

Progress = Callable[[int, int | None], None]


class DownloadError(registry.RegistryError):
    """A download that could not be completed."""


def _hash_existing(path: Path) -> "hashlib._Hash":
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest


def _offline_message(name: str, url: str, reason: object) -> str:
    host = urllib.parse.urlsplit(url).hostname or url
    return (
        f"cannot download {name}: {host} is not reachable ({reason}); check the network connection, "
        f"or fetch {url} on another machine and import it with `tnseg-desktop models import FILE`."
    )


def download(name: str, progress: Progress | None = None, timeout: float = 30.0, url: str | None = None) -> Path:
    """Download ``name`` into the user model folder, resuming a partial file; returns the installed path."""
    entry = registry.entry(name)
    url = url or entry.url
    if not url:
        raise DownloadError(f"{name} has no direct download address; get it from {entry.source or 'its authors'} and import it with `tnseg-desktop models import FILE --name {name}`.")
    part = user_models_dir() / f"{entry.file}.part"
    have = part.stat().st_size if part.exists() else 0
    if entry.size is not None and have > entry.size:
        part.unlink()
        have = 0

    request = urllib.request.Request(url, headers={"User-Agent": "tnseg-desktop"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to fetch: the partial file may already be whole
            response = None
        else:
            raise DownloadError(f"cannot download {name}: the server answered HTTP {exc.code} ({exc.reason}) for {url}.") from None
    except (urllib.error.URLError, socket.timeout, ConnectionError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(_offline_message(name, url, reason)) from None

    if response is not None:
        with response:
            resumed = have > 0 and response.status == 206
            if not resumed:
                have = 0  # the server sent the whole file: start over
            length = response.headers.get("Content-Length")
            total = have + int(length) if length is not None else entry.size
            digest = _hash_existing(part) if resumed else hashlib.sha256()
            try:
                with open(part, "ab" if resumed else "wb") as out:
                    registry.copy_hashing(response, out, digest, progress, total, done=have)
            except (socket.timeout, ConnectionError, OSError) as exc:
                raise DownloadError(f"the download of {name} stopped ({exc}); run the same command again to continue where it stopped.") from None
        hexdigest = digest.hexdigest()
    else:
        hexdigest = _hash_existing(part).hexdigest()

    size = part.stat().st_size
    if entry.size is not None and size < entry.size:
        raise DownloadError(f"the download of {name} ended early ({size} of {entry.size} bytes); run the same command again to continue.")
    try:
        registry.check_against_entry(entry, hexdigest, size, str(part))
    except registry.ImportRefused:
        part.unlink()
        raise DownloadError(f"the downloaded {entry.file} does not match the registry's checksum, so it was deleted and not installed.") from None
    if not entry.sha256:
        try:
            load_state_dict(part)
        except WeightsFileError as exc:
            part.unlink()
            raise DownloadError(f"the downloaded {entry.file} was refused: {exc.message}") from None
    return registry.install_verified(part, entry, hexdigest, size, url)
