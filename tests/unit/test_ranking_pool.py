"""The stored candidate pool: stored neighbours propose what the store's neighbours did, and replace only them."""

from __future__ import annotations

import threading

import numpy as np

from recommender.domain import ItemView, ProductFilter, RankQuery
from recommender.ranking.features import BehaviourContext, FeatureBuilder
from recommender.ranking.fusion import Rules, configured_model
from recommender.ranking.pool import StoredNeighbours, neighbour_pool, pooled_sources
from recommender.ranking.ranker import FusionRanker
from recommender.ranking.sources import AlsForUser, AnchorKept, Popular, SessionCoOccurring, VectorNeighbours

HITS = [("a", 1.0), ("p1", 0.9), ("p2", 0.8), ("x", 0.7), ("p3", 0.6), ("p4", 0.5)]


class Views:
    """An in-memory ItemLookup (the anchor has a text vector only)."""

    def __init__(self) -> None:
        self.views = {"a": ItemView("a", {"text": np.ones(2, dtype=np.float32)})}

    def get_many(self, ids: object) -> dict[str, ItemView]:
        return {p: self.views[p] for p in ids if p in self.views}  # type: ignore[attr-defined]

    def get(self, product_id: str) -> ItemView | None:
        return self.views.get(product_id)


def near(vector: np.ndarray, name: str, n: int, filters: ProductFilter | None) -> list[tuple[str, float]]:
    """The NearVector contract over a fixed best-first list."""
    return HITS[:n]


def test_stored_neighbours_propose_what_the_store_query_proposed() -> None:
    """Same hits → same candidates for any n and exclusions (the first n + 1 hits, anchor and exclusions out)."""
    live = VectorNeighbours("text", Views(), near)
    stored = StoredNeighbours("text", neighbour_pool(Views(), near, "a", 6)["text"])
    for n in (1, 2, 3, 5):
        for exclude in (frozenset(), frozenset({"x"})):
            query = RankQuery("a", exclude=exclude)
            assert stored.candidates(query, n) == live.candidates(query, n)
    assert [c.product_id for c in stored.candidates(RankQuery("a", exclude=frozenset({"x"})), 3)] == ["p1", "p2"]


def test_a_vector_the_anchor_lacks_stores_no_hits() -> None:
    pool = neighbour_pool(Views(), near, "a", 4)
    assert pool == {"text": HITS[:4], "image": []}
    assert neighbour_pool(Views(), near, "unknown", 4) == {"text": [], "image": []}


def test_pooled_sources_replace_only_the_store_queries_and_rank_in_this_thread() -> None:
    """The pool stands in for the vector-store sources (same names, same order); every other source is kept; a
    ranker without a remote source asks its sources in the calling thread."""
    views = Views()
    popular = Popular({"p1": 3.0, "p2": 1.0})
    sources = [VectorNeighbours("text", views, near), VectorNeighbours("image", views, near), popular]
    pooled = pooled_sources(sources, {"text": HITS[:3]})
    assert [s.name for s in pooled] == ["text", "image", "popularity"]
    assert isinstance(pooled[0], StoredNeighbours) and isinstance(pooled[1], StoredNeighbours)
    assert pooled[2] is popular and pooled[1].candidates(RankQuery("a"), 5) == []
    threads: list[str] = []

    class Recording:
        name = "recording"

        def candidates(self, query: RankQuery, n: int) -> list:  # type: ignore[type-arg]
            threads.append(threading.current_thread().name)
            return []

    ranker = FusionRanker("t", sources, views, FeatureBuilder(BehaviourContext()), configured_model({}), Rules())
    proposals = ranker.with_sources([*pooled, Recording()]).propose(RankQuery("a"))
    assert threads == [threading.current_thread().name]
    assert [c.product_id for c in proposals["text"]] == ["p1", "p2"]


def test_anchor_kept_answers_as_its_source_and_hands_out_copies() -> None:
    """A kept source gives its source's candidates per anchor and exclusions, asking the source once per key."""
    calls: list[tuple[str | None, int]] = []

    class Counting:
        name = "popularity"

        def candidates(self, query: RankQuery, n: int) -> list:  # type: ignore[type-arg]
            calls.append((query.anchor_id, n))
            return Popular({"p1": 3.0, "p2": 2.0, "a": 1.0}).candidates(query, n)

    kept = AnchorKept(Counting())
    first = kept.candidates(RankQuery("a"), 2)
    first.clear()  # a caller changing its list changes nothing stored
    assert [c.product_id for c in kept.candidates(RankQuery("a"), 2)] == ["p1", "p2"]
    assert [c.product_id for c in kept.candidates(RankQuery("a", exclude=frozenset({"p1"})), 2)] == ["p2"]
    assert [c.product_id for c in kept.candidates(RankQuery("p2"), 2)] == ["p1", "a"]
    assert calls == [("a", 2), ("a", 2), ("p2", 2)]


def test_stored_neighbours_answer_each_query_from_their_hits() -> None:
    """Asked the same again, a stored source answers the same (a caller's list is its own); asked anew, anew."""
    stored = StoredNeighbours("text", HITS)
    first = stored.candidates(RankQuery("a"), 3)
    first.clear()  # a caller changing its list changes nothing stored
    again = stored.candidates(RankQuery("a"), 3)
    assert [c.product_id for c in again] == ["p1", "p2", "x"]
    assert [c.rank for c in again] == [1, 2, 3]
    assert [c.product_id for c in stored.candidates(RankQuery("a", exclude=frozenset({"x"})), 3)] == ["p1", "p2"]
    assert [c.product_id for c in stored.candidates(RankQuery("p1"), 2)] == ["a", "p2"]
    assert stored.candidates(RankQuery("a"), 3) == again



class _CountingModel:
    """An ALS model's ``recommend`` over fixed scores, counting its calls (the source's keeping is under test)."""

    def __init__(self) -> None:
        self.calls = 0
        self.scores = {"p1": 0.9, "p2": 0.8, "a": 0.7, "p3": 0.6, "p4": 0.5}

    def recommend(self, user_id: str, n: int, exclude: frozenset[str] = frozenset()) -> list[tuple[str, float]]:
        self.calls += 1
        return [(p, s) for p, s in self.scores.items() if p not in exclude][:n]


class _CountingCooc:
    """A co-occurrence's ``similar`` over fixed rows, counting its calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.rows = {"h1": [("p1", 0.5), ("a", 0.4), ("p2", 0.3)], "h2": [("p2", 0.5), ("p3", 0.2), ("a", 0.2)]}

    def similar(self, product_id: str, n: int = 10, kind: str = "view") -> list[tuple[str, float]]:
        self.calls += 1
        return self.rows.get(product_id, [])[:n]


def test_als_for_user_keeps_the_shoppers_answer_and_filters_each_page() -> None:
    """The model is asked once per shopper and purchases; each page still leaves out its own anchor."""
    model = _CountingModel()
    source = AlsForUser(model)  # type: ignore[arg-type]
    first = source.candidates(RankQuery("p1", "u1"), 2)
    again = source.candidates(RankQuery("a", "u1"), 2)
    assert [c.product_id for c in first] == ["p2", "a"] and [c.product_id for c in again] == ["p1", "p2"]
    assert model.calls == 1
    bought = source.candidates(RankQuery("a", "u1", purchased=frozenset({"p1"})), 2)
    assert [c.product_id for c in bought] == ["p2", "p3"] and model.calls == 2
    assert source.candidates(RankQuery("a", "u2"), 2)[0].product_id == "p1" and model.calls == 3


def test_session_source_keeps_the_summed_list_per_recent_history() -> None:
    """Kept or fresh, the session candidates are the same for any anchor and exclusions; the rows are summed once
    per recent history (and again when it changes)."""
    cooc = _CountingCooc()
    kept = SessionCoOccurring(cooc, recent=2)  # type: ignore[arg-type]
    queries = [RankQuery(anchor, "u", ("h1", "h2"), exclude=exclude)
               for anchor in ("p2", "a", "p9") for exclude in (frozenset(), frozenset({"p1", "p3"}))]
    for q in [*queries, *queries]:
        fresh = SessionCoOccurring(_CountingCooc(), recent=2)  # type: ignore[arg-type]
        assert kept.candidates(q, 3) == fresh.candidates(q, 3)
    assert cooc.calls == 2 * 2  # two histories' rows, once per distinct exclusion set
    assert [c.product_id for c in kept.candidates(RankQuery("p9", "u", ("h1", "h2")), 3)] == ["p2", "a", "p1"]
    kept.candidates(RankQuery("p9", "u", ("h2",)), 3)
    assert cooc.calls == 5
