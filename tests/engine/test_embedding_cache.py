"""Embedding cache: hits, misses, LRU by bytes, disk round trip, per-key compute, invalidation."""

from __future__ import annotations

import threading
import time

import numpy as np

from tnseg_desktop.engine.embedding_cache import CacheKey, EmbeddingCache, frame_digest


def _arr(n: int, v: float = 1.0) -> np.ndarray:
    return np.full(n // 4, v, dtype=np.float32)  # n bytes


def test_hits_and_misses():
    c = EmbeddingCache(max_bytes=10_000)
    k = CacheKey("f1", "m")
    assert c.get(k) is None
    c.put(k, _arr(400))
    assert c.get(k) is not None and c.get(CacheKey("f1", "other-model")) is None
    assert (c.stats.hits, c.stats.misses) == (1, 2)


def test_frame_digest_depends_on_content_and_shape():
    a = np.zeros((4, 6), np.uint8)
    assert frame_digest(a) == frame_digest(a.copy())
    assert frame_digest(a) != frame_digest(a.reshape(6, 4))
    b = a.copy()
    b[1, 1] = 1
    assert frame_digest(a) != frame_digest(b)


def test_lru_eviction_by_bytes():
    c = EmbeddingCache(max_bytes=2500)
    k1, k2, k3 = (CacheKey(f"f{i}", "m") for i in range(3))
    c.put(k1, _arr(1000))
    c.put(k2, _arr(1000))
    assert c.get(k1) is not None  # k1 now most recent: k2 goes first
    c.put(k3, _arr(1000))
    assert c.nbytes == 2000 and c.stats.evictions == 1
    assert c.get(k2) is None and c.get(k1) is not None and c.get(k3) is not None
    c.put(CacheKey("huge", "m"), _arr(4000))  # larger than the whole budget: not kept
    assert c.nbytes <= 2500


def test_disk_round_trip_and_bound(tmp_path):
    c = EmbeddingCache(max_bytes=10_000, disk_dir=tmp_path, disk_max_bytes=3000)
    value = np.arange(200, dtype=np.float32)
    k = CacheKey("frame", "model")
    c.put(k, value)
    fresh = EmbeddingCache(max_bytes=10_000, disk_dir=tmp_path, disk_max_bytes=3000)
    got = fresh.get(k)
    np.testing.assert_array_equal(got, value)
    assert fresh.stats.disk_hits == 1 and fresh.contains(k)
    for i in range(5):  # ~928 bytes each: the bound keeps at most 3
        c.put(CacheKey(f"g{i}", "model"), np.arange(200, dtype=np.float32) + i)
        time.sleep(0.01)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) <= 3 and c.disk_bytes() <= 3000
    assert not [n for n in names if not n.endswith(".npy")]  # no temp files left behind
    assert CacheKey("g4", "model").file_name() in names  # newest kept


def test_unreadable_disk_entry_is_a_miss(tmp_path):
    c = EmbeddingCache(disk_dir=tmp_path)
    k = CacheKey("x", "m")
    (tmp_path / k.file_name()).write_bytes(b"not an npy file")
    assert c.get(k) is None and not (tmp_path / k.file_name()).exists()


def test_invalidate_drops_memory_and_optionally_disk(tmp_path):
    c = EmbeddingCache(disk_dir=tmp_path)
    k = CacheKey("x", "m")
    c.put(k, _arr(400))
    c.invalidate()
    assert len(c) == 0 and c.nbytes == 0 and c.contains(k)  # still on disk
    c.invalidate(disk=True)
    assert not c.contains(k)


def test_same_key_computed_once_across_threads():
    c = EmbeddingCache()
    calls = []

    def slow():
        calls.append(1)
        time.sleep(0.3)
        return _arr(400)

    k = CacheKey("f", "m")
    threads = [threading.Thread(target=c.get_or_compute, args=(k, slow)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(calls) == 1 and c.stats.computed == 1


def test_different_keys_do_not_wait_for_each_other():
    c = EmbeddingCache()
    release = threading.Event()
    started = threading.Event()

    def blocked():
        started.set()
        release.wait(10)
        return _arr(400)

    t = threading.Thread(target=c.get_or_compute, args=(CacheKey("a", "m"), blocked))
    t.start()
    assert started.wait(10)
    t0 = time.perf_counter()
    c.get_or_compute(CacheKey("b", "m"), lambda: _arr(400))
    assert time.perf_counter() - t0 < 1.0
    assert t.is_alive()  # "a" is still computing
    release.set()
    t.join(10)


def test_invalidation_when_the_model_changes():
    from tnseg_desktop.engine.sam_refiner import SamRefiner
    from sam_small import small_mobile_sam

    r = SamRefiner(small_mobile_sam(seed=0), name="mobilesam", model_id="model-A")
    f = np.random.default_rng(0).integers(0, 255, (64, 80), dtype=np.uint8)
    r.prepare(f)
    assert r.is_prepared(f)
    old = r.embedding(f).copy()
    r.set_model(small_mobile_sam(seed=1), "model-B")
    assert not r.is_prepared(f)
    new = r.embedding(f)
    assert r.cache.stats.computed == 2
    assert not np.allclose(old, new)
    # a cache shared with another model id never serves this model's entry
    other = SamRefiner(small_mobile_sam(seed=0), name="mobilesam", model_id="model-C", cache=r.cache)
    assert not other.is_prepared(f)
