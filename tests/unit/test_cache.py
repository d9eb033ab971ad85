"""StateCache: bounded LRU of (version, state) that never moves a stream backwards."""

from __future__ import annotations

import threading

import pytest

from cairn.commands import StateCache


def test_get_put_and_counters() -> None:
    cache = StateCache(maxsize=4)
    assert cache.get("a") is None
    cache.put("a", 1, "state-1")
    assert cache.get("a") == (1, "state-1")
    assert (cache.hits, cache.misses) == (1, 1)
    assert len(cache) == 1


def test_least_recently_used_is_evicted() -> None:
    cache = StateCache(maxsize=2)
    cache.put("a", 1, "a")
    cache.put("b", 1, "b")
    cache.get("a")  # a is now the most recent
    cache.put("c", 1, "c")
    assert cache.get("b") is None
    assert cache.get("a") == (1, "a") and cache.get("c") == (1, "c")
    assert len(cache) == 2


def test_never_moves_backwards() -> None:
    cache = StateCache()
    cache.put("a", 5, "five")
    cache.put("a", 3, "three")
    assert cache.get("a") == (5, "five")
    cache.put("a", 5, "five again")  # same version: the newer object wins (equal state)
    cache.put("a", 6, "six")
    assert cache.get("a") == (6, "six")


def test_invalidate_and_clear() -> None:
    cache = StateCache()
    cache.put("a", 1, "a")
    cache.put("b", 1, "b")
    cache.invalidate("a")
    cache.invalidate("missing")
    assert cache.get("a") is None and cache.get("b") == (1, "b")
    cache.clear()
    assert len(cache) == 0


def test_size_zero_disables_and_negative_is_refused() -> None:
    cache = StateCache(maxsize=0)
    cache.put("a", 1, "a")
    assert cache.get("a") is None and len(cache) == 0
    with pytest.raises(ValueError):
        StateCache(maxsize=-1)


def test_concurrent_writers_keep_the_highest_version() -> None:
    cache = StateCache(maxsize=8)
    barrier = threading.Barrier(8)

    def writer(n: int) -> None:
        barrier.wait()
        for version in range(n, 2000, 8):
            cache.put("s", version, version)
            cache.get("s")

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cache.get("s") == (1999, 1999)
