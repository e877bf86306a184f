from tnseg_desktop.ui.prefetch import PrefetchedFrames, frames_within_budget, prefetch_order
import numpy as np


def test_order_starts_at_focus_and_prefers_frames_ahead():
    order = prefetch_order(5, 20, 9)
    assert order[0] == 5
    assert order[1:4] == [6, 7, 8]
    assert order[4] == 4
    assert len(order) == len(set(order)) == 9


def test_order_wraps_around_and_covers_everything_when_it_fits():
    order = prefetch_order(18, 20, 100)
    assert sorted(order) == list(range(20))
    assert order[:3] == [18, 19, 0]


def test_order_with_tiny_inputs():
    assert prefetch_order(0, 0, 5) == []
    assert prefetch_order(0, 1, 5) == [0]
    assert prefetch_order(3, 2, 5) == [1, 0]


def test_budget_bounds_the_number_of_frames():
    assert frames_within_budget(1000, 10_000, 100) == 10
    assert frames_within_budget(1000, 10, 100) == 2
    assert frames_within_budget(1000, 10**9, 100) == 100


def test_cache_retain_drops_frames_outside_the_window():
    c = PrefetchedFrames()
    for i in range(5):
        c.put(i, np.zeros((2, 2), np.uint8))
    c.retain([1, 3])
    assert 1 in c and 3 in c and 0 not in c and len(c) == 2
