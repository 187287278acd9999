"""ItemCache (read-through LRU) and BehaviourOverlay (a model's own behavior vectors over stored views)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from recommender.store.item_cache import BehaviourOverlay, ItemCache


class _Source:
    """A store stand-in for the cache's unit test: products p0..p4 with a text and a stale behavior vector."""

    def __init__(self) -> None:
        self.fetches: list[list[str]] = []

    def items(self, product_ids: list[str]) -> Mapping[str, tuple[dict[str, Any], dict[str, np.ndarray]]]:
        self.fetches.append(list(product_ids))
        return {pid: ({"product_id": pid, "title": pid.upper(), "category": "A > B"},
                      {"text": np.ones(2, np.float32), "behavior": np.zeros(2, np.float32)})
                for pid in product_ids if pid in {f"p{i}" for i in range(5)}}


def test_cache_fetches_misses_once_in_one_batch_and_evicts_the_oldest() -> None:
    source = _Source()
    cache = ItemCache(source, max_items=3)
    assert set(cache.get_many(["p0", "p1", "nope"])) == {"p0", "p1"}
    assert cache.get_many(["p0", "p1"])["p0"].title == "P0" and source.fetches == [["p0", "p1", "nope"]]
    cache.get_many(["p2", "p3"])  # p0 is now the least recently used of four: evicted
    cache.get_many(["p0"])
    assert source.fetches[-1] == ["p0"]


def test_overlay_swaps_in_the_models_behaviour_vector_and_keeps_the_rest() -> None:
    source = _Source()
    cache = ItemCache(source)
    model_vec = np.array([0.6, 0.8], np.float32)
    overlay = BehaviourOverlay(cache, {"p1": model_vec})
    views = overlay.get_many(["p0", "p1"])
    assert "behavior" not in views["p0"].vectors  # the model does not know p0: its stale stored vector is hidden
    assert np.array_equal(views["p1"].vectors["behavior"], model_vec)
    assert np.array_equal(views["p1"].vectors["text"], np.ones(2))
    assert np.array_equal(cache.get_many(["p1"])["p1"].vectors["behavior"], np.zeros(2))  # the base is untouched
    assert overlay.get_many(["p1"])["p1"] is views["p1"]  # reused while the base view is the same object
    cache.clear()
    assert overlay.get("p1") is not views["p1"] and overlay.get("p1") == views["p1"]  # rebuilt after a refetch


def test_resident_views_come_first_and_the_store_gets_only_the_rest() -> None:
    """With ``resident``, a miss it answers is never fetched from the store; the others are, in one batch."""
    source = _Source()
    resident_view = ItemCache(_Source()).get_many(["p0"])["p0"]
    asked: list[list[str]] = []

    def resident(ids: list[str]) -> dict[str, Any]:
        asked.append(list(ids))
        return {"p0": resident_view} if "p0" in ids else {}

    cache = ItemCache(source, resident=resident)
    got = cache.get_many(["p0", "p1", "nope"])
    assert got["p0"] is resident_view and set(got) == {"p0", "p1"}
    assert asked == [["p0", "p1", "nope"]] and source.fetches == [["p1", "nope"]]
    cache.get_many(["p0", "p1"])  # both cached now: neither asked again
    assert asked == [["p0", "p1", "nope"]] and source.fetches == [["p1", "nope"]]
