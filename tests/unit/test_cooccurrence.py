"""Co-occurrence on a tiny hand-made set of sessions: counts per kind, similarity, artifacts."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from recommender.behaviour import cooccurrence
from recommender.behaviour.cooccurrence import CoItem, CoOccurrence, build_cooccurrence

SESSIONS = [
    ("s1", [("a", "view"), ("b", "view"), ("b", "cart"), ("a", "cart"), ("a", "purchase"), ("b", "purchase")]),
    ("s2", [("a", "view"), ("b", "view"), ("c", "view"), ("a", "view")]),
    ("s3", [("a", "view"), ("c", "cart"), ("a", "cart")]),
    ("s4", [("d", "purchase")]),
]


def test_counts_per_kind_by_hand() -> None:
    co = build_cooccurrence(SESSIONS)
    assert co.sessions == 4 and list(co.items) == ["a", "b", "c", "d"]
    assert [co.count("a", "b", k) for k in ("view", "cart", "purchase")] == [2, 1, 1]
    assert [co.count("a", "c", k) for k in ("view", "cart", "purchase")] == [2, 1, 0]
    assert [co.count("b", "c", k) for k in ("view", "cart", "purchase")] == [1, 0, 0]
    assert co.count("a", "a") == 0 and co.count("a", "d") == 0 and co.count("a", "zzz") == 0
    assert co.count("b", "a", "cart") == co.count("a", "b", "cart")  # symmetric
    assert co.sessions_per_item.tolist() == [3, 2, 2, 1]


def test_co_occurring_ranks_by_similarity_and_reports_the_strongest_kind() -> None:
    co = build_cooccurrence(SESSIONS)
    got = co.co_occurring("b", 5)
    assert got == [CoItem("a", 1, "purchase", round(2 / math.sqrt(2 * 3), 6), 2),
                   CoItem("c", 1, "view", round(1 / math.sqrt(2 * 2), 6), 1)]
    assert [c.product_id for c in co.co_occurring("a", 5, kind="purchase")] == ["b"]
    assert co.co_occurring("d", 5) == [] and co.co_occurring("nope", 5) == []


def test_long_sessions_keep_their_last_items_and_a_fixed_id_map_ignores_others() -> None:
    from recommender.events.interactions import IdMap

    long = [("s", [(p, "view") for p in "abcdef"])]
    co = build_cooccurrence(long, max_session_items=3)
    assert co.count("d", "f") == 1 and co.count("a", "b") == 0
    fixed = build_cooccurrence(SESSIONS, items=IdMap(["a", "c"]))
    assert list(fixed.items) == ["a", "c"] and fixed.count("a", "c") == 2


def test_save_load_round_trip_without_pickle(tmp_path: Path) -> None:
    co = build_cooccurrence(SESSIONS)
    co.save(tmp_path)
    back = CoOccurrence.load(tmp_path)
    assert back.items == co.items and back.sessions == co.sessions
    for kind, m in co.counts.items():
        assert (back.counts[kind] != m).nnz == 0
    assert np.array_equal(back.sessions_per_item, co.sessions_per_item)
    assert back.co_occurring("a", 3) == co.co_occurring("a", 3)


def test_count_agrees_with_the_dense_matrix_for_every_pair(tmp_path: Path) -> None:
    """``count`` reads the CSR arrays directly; it must equal the matrix element for every pair, after a reload."""
    rng = np.random.default_rng(3)
    products = [f"p{i}" for i in range(12)]
    sessions = [(f"s{n}", [(products[int(j)], str(rng.choice(["view", "cart", "purchase"])))
                           for j in rng.choice(12, size=int(rng.integers(2, 6)), replace=False)]) for n in range(40)]
    co = build_cooccurrence(sessions)
    co.save(tmp_path)
    loaded = CoOccurrence.load(tmp_path)
    for kind in ("view", "purchase"):
        dense = co.counts[kind].toarray()
        assert dense.sum() > 0
        for a in products:
            for b in products:
                i, j = co.items.index(a), co.items.index(b)
                expected = int(dense[i, j]) if i is not None and j is not None else 0
                assert co.count(a, b, kind) == loaded.count(a, b, kind) == expected
    assert co.count("p0", "unknown") == 0


@pytest.mark.parametrize("row_max", [512, 2])  # rows kept as dicts, and rows too long for that
def test_shared_sessions_are_the_counts_of_each_pair(monkeypatch: pytest.MonkeyPatch, row_max: int) -> None:
    monkeypatch.setattr(cooccurrence, "SHARED_ROW_MAX", row_max)
    rng = np.random.default_rng(4)
    products = [f"p{i}" for i in range(12)]
    sessions = [(f"s{n}", [(products[int(j)], str(rng.choice(["view", "cart", "purchase"])))
                           for j in rng.choice(12, size=int(rng.integers(2, 6)), replace=False)]) for n in range(40)]
    co = build_cooccurrence(sessions)
    for _ in range(2):  # the rows read, then the rows kept
        for a in [*products, "unknown"]:
            for b in [*products, "unknown"]:
                assert co.shared_sessions(a, b) == {k: float(co.count(a, b, k)) for k in ("view", "purchase")}
    assert any(co.shared_sessions(a, b)["purchase"] > 0 for a in products for b in products)


def test_similar_is_co_occurring_without_the_counts() -> None:
    """``similar`` (the candidate sources' fast read) gives co_occurring's products, order and similarities."""
    rng = np.random.default_rng(5)
    products = [f"p{i}" for i in range(15)]
    sessions = [(f"s{n}", [(products[int(j)], str(rng.choice(["view", "cart", "purchase"])))
                           for j in rng.choice(15, size=int(rng.integers(2, 7)), replace=False)]) for n in range(60)]
    co = build_cooccurrence(sessions)
    for kind in ("view", "purchase"):
        for n in (1, 3, 50):
            for p in [*products, "unknown"]:
                assert co.similar(p, n, kind) == [(c.product_id, c.similarity) for c in co.co_occurring(p, n, kind)]
    assert co.similar("p1", 0) == [] and len(co.similar("p1", 50)) > 3
