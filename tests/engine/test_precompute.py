"""Background precompute: nearest-first order, re-prioritising, prompt cancel, clicks never queue."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch
from torch import nn

from tnseg_desktop.engine.precompute import Precompute, nearest_order
from tnseg_desktop.engine.refiner_base import Prompts, as_clicks
from tnseg_desktop.engine.sam_refiner import SamRefiner
from sam_small import small_mobile_sam


class GatedEncoder(nn.Module):
    """The real encoder, optionally slowed down, with its first call held until ``gate`` is set."""

    def __init__(self, inner: nn.Module, delay: float = 0.0, gate: threading.Event | None = None) -> None:
        super().__init__()
        self.inner = inner
        self.img_size = inner.img_size
        self.delay = delay
        self.gate = gate
        self.entered = threading.Event()
        self.calls = 0
        self._lock = threading.Lock()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with self._lock:
            self.calls += 1
            first = self.calls == 1
        self.entered.set()
        if first and self.gate is not None:
            assert self.gate.wait(60)
        if self.delay:
            time.sleep(self.delay)
        return self.inner(x)


def _refiner(delay: float = 0.0, gate: threading.Event | None = None) -> tuple[SamRefiner, GatedEncoder]:
    model = small_mobile_sam()
    enc = GatedEncoder(model.image_encoder, delay, gate)
    model.image_encoder = enc
    return SamRefiner(model, name="mobilesam"), enc


def _frames(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (48, 64), dtype=np.uint8) for _ in range(n)]


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_nearest_order():
    assert nearest_order(9, 4) == [4, 5, 3, 6, 2, 7, 1, 8, 0]
    assert nearest_order(4, 0) == [0, 1, 2, 3]
    assert nearest_order(0, 0) == []


def test_visits_nearest_first_and_prepares_all():
    r, _ = _refiner()
    frames = _frames(9)
    progress = []
    pc = Precompute(frames, r, current=4, on_progress=lambda i, d, t: progress.append((i, d, t))).start()
    assert pc.wait(120)
    assert pc.visited == [4, 5, 3, 6, 2, 7, 1, 8, 0]
    assert progress[-1] == (0, 9, 9)
    assert all(r.is_prepared(f) for f in frames)
    assert r.cache.stats.computed == 9


def test_reprioritises_when_the_current_frame_moves():
    r, _ = _refiner()
    frames = _frames(9)
    pc = Precompute(frames, r, current=4)
    pc.on_progress = lambda i, d, t: pc.set_current(8) if d == 1 else None
    pc.start()
    assert pc.wait(120)
    assert pc.visited == [4, 8, 7, 6, 5, 3, 2, 1, 0]


def test_cancel_returns_within_one_embedding():
    r, enc = _refiner(delay=0.5)
    frames = _frames(20)
    t0 = time.perf_counter()
    r.encode(frames[0][::-1].copy())
    one = time.perf_counter() - t0
    pc = Precompute(frames, r, current=10).start()
    assert enc.entered.wait(30)
    time.sleep(0.05)
    t0 = time.perf_counter()
    assert pc.cancel(wait=True, timeout=30)
    elapsed = time.perf_counter() - t0
    assert elapsed <= one + 0.5, (elapsed, one)
    assert pc.done_count <= 2 and not pc.running and pc.cancelled


def test_click_on_uncached_frame_does_not_wait_for_the_queue():
    gate = threading.Event()
    r, enc = _refiner(gate=gate)
    frames = _frames(8)
    pc = Precompute(frames, r, current=0).start()
    try:
        assert enc.entered.wait(30)  # the worker is stuck inside frame 0's embedding
        out: list[np.ndarray] = []
        click = threading.Thread(target=lambda: out.append(r.refine(frames[5], None, Prompts(clicks=as_clicks([(20, 30, True)])))))
        click.start()
        click.join(60)
        assert not click.is_alive() and not gate.is_set()
        assert out[0].shape == (48, 64)
        assert pc.computing == 0 and pc.done_count == 0
    finally:
        gate.set()
        pc.cancel(timeout=60)


def test_click_on_the_frame_in_progress_shares_its_embedding():
    gate = threading.Event()
    r, enc = _refiner(gate=gate)
    frames = _frames(6)
    pc = Precompute(frames, r, current=0).start()
    try:
        assert enc.entered.wait(30)
        click = threading.Thread(target=r.refine, args=(frames[0], None, Prompts(clicks=as_clicks([(20, 30, True)]))))
        click.start()
        time.sleep(0.3)
        assert click.is_alive()  # waiting for the same key, not computing it again
        gate.set()
        click.join(60)
        assert not click.is_alive()
    finally:
        gate.set()
        pc.cancel(timeout=60)
    assert r.cache.stats.computed == len(pc.visited) == enc.calls


def test_window_of_max_frames_follows_the_current_frame():
    r, _ = _refiner()
    frames = _frames(10)
    pc = Precompute(frames, r, current=5, max_frames=3).start()
    try:
        deadline = time.time() + 60
        while pc.done_count < 3 and time.time() < deadline:
            time.sleep(0.02)
        time.sleep(0.1)
        assert sorted(pc.visited) == [4, 5, 6] and pc.running  # idle, not finished
        pc.set_current(0)
        while pc.done_count < 6 and time.time() < deadline:
            time.sleep(0.02)
        time.sleep(0.1)
        assert pc.visited[3:] == [0, 1, 2] and pc.running
    finally:
        t0 = time.perf_counter()
        assert pc.cancel(timeout=30)
    assert time.perf_counter() - t0 < 5


def test_a_broken_frame_does_not_stop_the_others():
    r, _ = _refiner()
    frames = _frames(4)

    def get(i: int) -> np.ndarray:
        if i == 2:
            raise OSError("truncated frame")
        return frames[i]

    errors = []
    pc = Precompute((4, get), r, current=0, on_error=lambda i, e: errors.append(i)).start()
    assert pc.wait(60)
    assert pc.visited == [0, 1, 3] and errors == [2]
