"""FeatureBuilder.rows, built column by column, against the per-candidate definition of every feature."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
from threadpoolctl import threadpool_limits

from recommender.behaviour.als import fit_als
from recommender.behaviour.cooccurrence import build_cooccurrence
from recommender.config import CollaborativeSettings
from recommender.domain import Candidate, ItemView, RankQuery
from recommender.events.interactions import build_interactions
from recommender.events.log import Event
from recommender.ranking.features import (
    FEATURES,
    BehaviourContext,
    FeatureBuilder,
    price_distance,
    shared_attributes,
    shared_category_depth,
)


def _reference_row(fb: FeatureBuilder, query: RankQuery, anchor: ItemView | None, item: ItemView,
                   history: list[ItemView], proposals: dict[str, list[Candidate]]) -> list[float]:
    """One candidate's features, straight from their definitions (slow and obvious)."""
    b, pid = fb.behaviour, item.product_id
    f: dict[str, float] = {
        "popularity": math.log1p(b.popularity.get(pid, 0.0)) / b.max_log_popularity,
        "recent_popularity": math.log1p(b.recent_popularity.get(pid, 0.0)) / b.max_log_recent_popularity}

    def cos(x: ItemView, name: str) -> float:
        u, v = x.vectors.get(name), item.vectors.get(name)
        return float(np.dot(u, v)) if u is not None and v is not None else 0.0

    if anchor is not None:
        f.update(same_category=shared_category_depth(anchor.category, item.category),
                 same_variant=float(anchor.variant_group == item.variant_group),
                 same_color=float(bool(anchor.color) and anchor.color == item.color),
                 shared_attributes=shared_attributes(anchor.attributes, item.attributes),
                 price_distance=price_distance(anchor.price, item.price),
                 text=cos(anchor, "text"), image=cos(anchor, "image"), behavior=cos(anchor, "behavior"))
    for name in ("text", "image"):
        if history:
            f[f"history_{name}"] = max(cos(h, name) for h in history)
    co, model = b.cooccurrence, b.model
    assert co is not None and model is not None
    if anchor is not None:
        i, j = co.items.index(anchor.product_id), co.items.index(pid)
        if i is not None and j is not None:
            n = co.count(anchor.product_id, pid, "view")
            f["cooccurrence"] = n / math.sqrt(co.sessions_per_item[i] * co.sessions_per_item[j]) if n else 0.0
        f["copurchase"] = math.log1p(co.count(anchor.product_id, pid, "purchase"))
    session = 0.0
    for h in query.history[:5]:
        i, j = co.items.index(h), co.items.index(pid)
        n = co.count(h, pid, "view")
        if n and i is not None and j is not None:
            session += n / math.sqrt(co.sessions_per_item[i] * co.sessions_per_item[j])
    f["session"] = session
    u, j = model.users.index(query.user_id or ""), model.items.index(pid)
    f["als_user"] = float(model.item_factors[j] @ model.user_factors[u]) if u is not None and j is not None \
        and model.trained[j] else 0.0
    for source, cands in proposals.items():
        for c in cands:
            if c.product_id == pid:
                f[f"rr_{source}"] = 1.0 / c.rank
                f["n_sources"] = f.get("n_sources", 0.0) + 1
    if anchor is not None:
        f["anchor_popularity"] = math.log1p(b.popularity.get(anchor.product_id, 0.0)) / b.max_log_popularity
    f["history_length"] = math.log1p(len(query.history))
    return [f.get(name, 0.0) for name in FEATURES]  # text_gap needs every candidate: set by the caller


def _unit(rng: np.random.Generator, dim: int) -> np.ndarray:
    v = rng.normal(size=dim).astype(np.float32)
    return v / np.linalg.norm(v)


def _shop() -> tuple[BehaviourContext, dict[str, ItemView]]:
    """Behaviour and views of 30 products with random events (some without an image vector or a price)."""
    rng = np.random.default_rng(11)
    pids = [f"p{i}" for i in range(30)]
    events = [Event(f"u{int(rng.integers(8))}", pids[int(rng.integers(30))], str(rng.choice(["view", "purchase"])),
                    datetime(2024, 1, 1 + int(rng.integers(20)), tzinfo=UTC),
                    f"s{int(rng.integers(25))}") for _ in range(300)]
    sessions: dict[str, list[tuple[str, str]]] = {}
    for e in sorted(events, key=lambda e: e.timestamp):
        sessions.setdefault(e.session_id, []).append((e.product_id, e.event))
    cfg = CollaborativeSettings(factors=4, iterations=3, threads=1)
    with threadpool_limits(1, "blas"):
        model = fit_als(build_interactions(events, cfg, reference=datetime(2024, 1, 21, tzinfo=UTC)), cfg)
    context = BehaviourContext(build_cooccurrence(sessions.items()), model,
                               {p: float(rng.integers(0, 50)) for p in pids}, {p: float(rng.integers(0, 5))
                                                                              for p in pids[::2]})
    views = {p: ItemView(p, {"text": _unit(rng, 6), **({"image": _unit(rng, 5)} if i % 4 else {}),
                             "behavior": _unit(rng, 4)}, ("W", "Tops", "Shirts" if i % 3 else "Tees"),
                         float(rng.integers(5, 90)) if i % 5 else None, f"g{i // 2}", color=["red", "blue"][i % 2],
                         attributes=(("pattern", ["plain", "striped"][i % 3 % 2]),)) for i, p in enumerate(pids)}
    return context, views


def test_rows_equal_the_per_candidate_definitions() -> None:
    context, views = _shop()
    pids = list(views)
    fb = FeatureBuilder(context)
    anchor = views["p0"]
    candidates = {p: views[p] for p in pids[1:]}
    history = [views["p3"], views["p7"]]
    proposals = {"text": [Candidate(p, "text", 0.5, r) for r, p in enumerate(pids[1:12], start=1)],
                 "popularity": [Candidate(p, "popularity", 1.0, r) for r, p in enumerate(pids[5:20], start=1)]}
    for query, a in ((RankQuery("p0", "u1", ("p3", "p7"), k=10), anchor), (RankQuery(None, "u2", (), k=10), None)):
        rows = fb.rows(query, a, candidates, history if a else [], proposals)
        expected = np.array([_reference_row(fb, query, a, v, history if a else [], proposals)
                             for v in candidates.values()], dtype=np.float32)
        text = expected[:, FEATURES.index("text")]
        expected[:, FEATURES.index("text_gap")] = text - text.max()
        assert rows.shape == (len(candidates), len(FEATURES))
        assert np.abs(rows).sum() > 0
        np.testing.assert_allclose(rows, expected, rtol=1e-5, atol=1e-6)


def test_kept_anchor_columns_give_the_rows_a_fresh_builder_gives() -> None:
    """The anchor-side columns a builder keeps are exact: other shoppers, other candidate sets and orders, and a
    candidate whose view changed (a new price) give the same rows as a builder that kept nothing."""
    context, views = _shop()
    pids = list(views)
    kept = FeatureBuilder(context)
    proposals = {"text": [Candidate(p, "text", 0.5, r) for r, p in enumerate(pids[1:12], start=1)]}
    repriced = dict(views, p4=replace(views["p4"], price=(views["p4"].price or 10.0) * 3))
    requests = [(RankQuery("p0", "u1", ("p3", "p7"), k=10), pids[1:20], views),
                (RankQuery("p0", "u2", ("p9",), k=10), list(reversed(pids[4:30])), views),
                (RankQuery("p0", "u3", (), k=10), pids[2:25], repriced),
                (RankQuery("p5", "u1", ("p3",), k=10), pids[6:], views)]
    for query, ids, vs in requests * 2:
        candidates = {p: vs[p] for p in ids if p != query.anchor_id}
        history = [vs[h] for h in query.history]
        anchor = vs[query.anchor_id] if query.anchor_id else None
        got = kept.rows(query, anchor, candidates, history, proposals)
        want = FeatureBuilder(context).rows(query, anchor, candidates, history, proposals)
        np.testing.assert_array_equal(got, want)
    assert len(kept._anchors) == 2 and len(kept._anchors["p0"].rows) >= 25
