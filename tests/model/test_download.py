"""Download: the offline message, and resume against a local server (127.0.0.1, bounded, stops itself)."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from contextlib import contextmanager

import pytest

from tnseg_desktop.model import registry
from tnseg_desktop.model.download import DownloadError, download
from tnseg_desktop.paths import user_models_dir

PAYLOAD = bytes(range(256)) * 1024  # 256 KiB


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(payload: bytes, honour_range: bool = True):
    """A one-file server on 127.0.0.1; records the Range headers it was sent."""
    ranges: list[str | None] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            header = self.headers.get("Range")
            ranges.append(header)
            start = int(header.split("=")[1].split("-")[0]) if (header and honour_range) else 0
            body = payload[start:]
            self.send_response(206 if start else 200)
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(payload) - 1}/{len(payload)}")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.timeout = 5
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/model.bin", ranges
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture()
def entry_for(tmp_path, monkeypatch):
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    shipped = tmp_path / "shipped"
    shipped.mkdir()

    def make(url: str, sha256: str | None = None, size: int | None = len(PAYLOAD)) -> str:
        model = {"name": "remote-net", "title": "remote net", "architecture": "test", "file": "remote.bin", "kind": "third-party",
                 "size": size, "sha256": sha256, "licence": "MIT", "source": "tests", "url": url}
        (shipped / "registry.json").write_text(json.dumps({"version": 1, "models": [model]}))
        monkeypatch.setenv("TNSEG_SHIPPED_MODELS", str(shipped))
        return "remote-net"

    return make


def _digest(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def test_offline_is_one_clear_line(entry_for):
    name = entry_for(f"http://127.0.0.1:{_free_port()}/model.bin", _digest(PAYLOAD))
    with pytest.raises(DownloadError) as info:
        download(name, timeout=5)
    line = info.value.one_line()
    assert "not reachable" in line and "models import" in line and "\n" not in line


def test_resume_continues_a_partial_file(entry_for):
    with serve(PAYLOAD) as (url, ranges):
        name = entry_for(url, _digest(PAYLOAD))
        half = len(PAYLOAD) // 2
        (user_models_dir() / "remote.bin.part").write_bytes(PAYLOAD[:half])
        progress = []
        path = download(name, progress=lambda done, total: progress.append((done, total)), timeout=5)
    assert ranges == [f"bytes={half}-"]
    assert path.read_bytes() == PAYLOAD
    assert progress[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert registry.status(name, deep=True) == registry.INSTALLED
    assert not (user_models_dir() / "remote.bin.part").exists()


def test_server_without_range_support_restarts(entry_for):
    with serve(PAYLOAD, honour_range=False) as (url, ranges):
        name = entry_for(url, _digest(PAYLOAD))
        (user_models_dir() / "remote.bin.part").write_bytes(b"garbage" * 10)
        path = download(name, timeout=5)
    assert path.read_bytes() == PAYLOAD


def test_checksum_mismatch_deletes_the_download(entry_for):
    with serve(PAYLOAD) as (url, _):
        name = entry_for(url, "0" * 64)
        with pytest.raises(DownloadError, match="checksum"):
            download(name, timeout=5)
    assert not (user_models_dir() / "remote.bin.part").exists()
    assert not (user_models_dir() / "remote.bin").exists()


def test_entry_without_address_says_where_to_get_it(entry_for):
    name = entry_for(None)
    with pytest.raises(DownloadError, match="--name remote-net"):
        download(name)
