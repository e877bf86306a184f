"""Lazy decoding, the byte-bounded cache, and concurrent frame reads."""

from __future__ import annotations

import random
import threading
import time

import numpy as np
import pytest

from loader_fixtures import color3d_path, ybr_color_path
from tnseg_desktop.io import open_source
from tnseg_desktop.io.frame_cache import FrameCache

FRAME_BYTES = 480 * 640 * 3  # one decoded frame of color3d_jpeg_baseline.dcm


def test_first_frame_without_decoding_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydicom.pixels.decoders.base import Decoder

    calls: list[int | None] = []
    original = Decoder.as_array

    def counting(self, src, *, index=None, **kwargs):
        calls.append(index)
        return original(self, src, index=index, **kwargs)

    monkeypatch.setattr(Decoder, "as_array", counting)
    start = time.perf_counter()
    with open_source(color3d_path()) as cine:
        assert len(cine) == 120
        assert calls == []  # opening decodes nothing
        frame = cine.frame(0)
        elapsed = time.perf_counter() - start
        assert frame.shape == (480, 640, 3)
        assert cine.decode_count == 1
        assert calls == [0] and len(cine.cache) == 1
        cine.frame(0)
        assert cine.decode_count == 1  # served from the cache
        cine.frame(119)
        assert cine.decode_count == 2 and len(calls) == 2
    assert elapsed < 3.0  # generous: the goal (<300 ms) is measured by bench/cine_load.py on a quiet machine


def test_cache_memory_bound_is_respected() -> None:
    with open_source(color3d_path(), cache_bytes=3 * FRAME_BYTES) as cine:
        for i in range(10):
            cine.frame(i)
            assert cine.cache.nbytes <= 3 * FRAME_BYTES
        assert cine.cache.indices() == [7, 8, 9]
        assert cine.decode_count == 10
        cine.frame(9)
        assert cine.decode_count == 10
        cine.frame(0)  # evicted long ago: decoded again
        assert cine.decode_count == 11
        assert cine.cache.nbytes <= 3 * FRAME_BYTES


def test_zero_cache_still_returns_frames() -> None:
    with open_source(ybr_color_path(), cache_bytes=0) as cine:
        a = cine.frame(3)
        b = cine.frame(3)
        np.testing.assert_array_equal(a, b)
        assert cine.decode_count == 2 and cine.cache.nbytes == 0


def test_frames_are_read_only_and_the_cine_closes() -> None:
    cine = open_source(ybr_color_path())
    frame = cine.frame(0)
    with pytest.raises(ValueError):
        frame[0, 0, 0] = 1
    with cine:
        pass
    assert cine.closed
    with pytest.raises(ValueError):
        cine.frame(1)
    with pytest.raises(IndexError):
        open_source(ybr_color_path()).frame(30)
    assert open_source(ybr_color_path()).frame(-1).shape == (240, 320, 3)


@pytest.mark.parametrize("cache_bytes", [512 << 20, 240 * 320 * 3 * 2])
def test_concurrent_readers_get_correct_frames(cache_bytes: int) -> None:
    path = ybr_color_path()
    with open_source(path, cache_bytes=0) as serial:
        expected = [serial.frame(i).copy() for i in range(len(serial))]
    errors: list[BaseException] = []
    with open_source(path, cache_bytes=cache_bytes) as cine:
        barrier = threading.Barrier(6)

        def reader(seed: int) -> None:
            order = list(range(len(cine))) * 2
            random.Random(seed).shuffle(order)
            try:
                barrier.wait()
                for i in order:
                    np.testing.assert_array_equal(cine.frame(i), expected[i])
            except BaseException as exc:  # reported in the main thread
                errors.append(exc)

        threads = [threading.Thread(target=reader, args=(s,)) for s in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors[0]
        assert cine.cache.nbytes <= cache_bytes
        if cache_bytes > 100 << 20:
            assert cine.decode_count == len(cine)  # every frame decoded exactly once despite 6 threads


def test_frame_cache_lru_unit() -> None:
    cache = FrameCache(max_bytes=300)
    a, b, c = (np.zeros(100, np.uint8) for _ in range(3))
    cache.put(0, a)
    cache.put(1, b)
    cache.put(2, c)
    assert cache.get(0) is a  # 0 becomes most recent
    cache.put(3, np.zeros(100, np.uint8))
    assert cache.indices() == [2, 0, 3]
    cache.put(4, np.zeros(400, np.uint8))  # larger than the whole budget: not stored
    assert 4 not in cache and cache.nbytes == 300
    assert cache.evictions == 1
