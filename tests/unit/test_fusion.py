"""Fusion scoring, normalisation, rules and diversity on tiny hand-made cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recommender.domain import ItemView, RankQuery
from recommender.errors import RecommenderError
from recommender.ranking.features import FEATURES, price_distance, shared_category_depth
from recommender.ranking.fusion import (
    FusionModel,
    Rules,
    allowed_ids,
    configured_model,
    feature_stats,
    learn_model,
    mmr,
    select,
)

D = len(FEATURES)


def test_configured_model_scores_by_hand() -> None:
    rows = np.zeros((2, D))
    rows[0, FEATURES.index("text")] = 1.0
    rows[1, FEATURES.index("cooccurrence")] = 1.0
    model = configured_model({"text": 2.0, "cooccurrence": 0.5})  # no stats: identity standardisation
    scores, contributions = model.score(rows)
    assert scores.tolist() == [2.0, 0.5]
    assert contributions[0, FEATURES.index("text")] == 2.0 and contributions[1].sum() == 0.5


def test_standardisation_makes_scales_comparable() -> None:
    rows = np.zeros((4, D))
    rows[:, FEATURES.index("text")] = [0.90, 0.92, 0.94, 0.96]  # a model with a narrow range
    rows[:, FEATURES.index("image")] = [0.1, 0.4, 0.7, 1.0]  # a model with a wide range
    _, scale = feature_stats(rows)
    model = configured_model({"text": 1.0, "image": 1.0}, rows)
    _, contributions = model.score(rows)
    t, i = FEATURES.index("text"), FEATURES.index("image")
    assert np.allclose(contributions[:, t], contributions[:, i])  # same rank order → same standard scores
    assert scale[FEATURES.index("behavior")] == 1.0  # a constant feature does not divide by zero
    with pytest.raises(RecommenderError, match="bogus"):
        configured_model({"bogus": 1.0})


def test_learned_model_finds_the_informative_signal(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(400, D))
    labels = (rows[:, FEATURES.index("cooccurrence")] > 0.5).astype(int)
    model = learn_model(rows, labels)
    weights = dict(zip(FEATURES, model.weights, strict=True))
    assert weights["cooccurrence"] == max(weights.values())
    path = tmp_path / "fusion.json"
    model.save(path)
    again = FusionModel.load(path)
    assert np.allclose(again.score(rows)[0], model.score(rows)[0]) and again.kind == "learned"
    with pytest.raises(RecommenderError):
        learn_model(rows, np.zeros(400, dtype=int))


def view(pid: str, group: str = "", in_stock: bool = True, vec: tuple[float, ...] = (1.0, 0.0)) -> ItemView:
    return ItemView(pid, {"image": np.array(vec)}, variant_group=group or pid, in_stock=in_stock)


def test_rules_exclude_anchor_out_of_stock_and_purchased() -> None:
    q = RankQuery("a", purchased=frozenset({"p"}), exclude=frozenset({"x"}))
    rules = Rules()
    views = {v.product_id: v for v in (view("a"), view("x"), view("p"), view("o", in_stock=False), view("b"))}
    assert allowed_ids(["a", "x", "p", "o", "b", "unknown"], views, q, rules) == ["b"]
    assert allowed_ids(["b", "o"], views, q, Rules(exclude_out_of_stock=False)) == ["b", "o"]
    assert allowed_ids(["p", "b"], views, q, Rules(exclude_purchased=False)) == ["p", "b"]


def test_variant_cap_keeps_the_best_of_each_group() -> None:
    items = {p: view(p, g) for p, g in [("a1", "A"), ("a2", "A"), ("a3", "A"), ("b1", "B")]}
    scores = {"a1": 4.0, "a2": 3.0, "a3": 2.0, "b1": 1.0}
    assert select(["a1", "a2", "a3", "b1"], scores, items, 3, Rules(max_per_variant_group=1)) == ["a1", "b1"]
    assert select(["a1", "a2", "a3", "b1"], scores, items, 3, Rules(max_per_variant_group=2)) == ["a1", "a2", "b1"]
    assert select(["a1", "a2", "a3", "b1"], scores, items, 3, Rules()) == ["a1", "a2", "a3"]


def test_mmr_trades_relevance_for_novelty() -> None:
    # a and b look identical, c looks different; relevance a > b > c
    items = {"a": view("a", vec=(1, 0)), "b": view("b", vec=(1, 0)), "c": view("c", vec=(0, 1))}
    scores = {"a": 1.0, "b": 0.9, "c": 0.5}
    assert mmr(["a", "b", "c"], scores, items, 2, diversity=0.0) == ["a", "b"]
    # λ=0.5: after a, b scores 0.5·0.8 − 0.5·1 = −0.1, c scores 0.5·0 − 0 = 0 → c
    assert mmr(["a", "b", "c"], scores, items, 2, diversity=0.5) == ["a", "c"]


def test_feature_helpers() -> None:
    assert shared_category_depth(("Men", "Tops", "Shirts"), ("Men", "Tops", "Tees")) == pytest.approx(2 / 3)
    assert shared_category_depth(("Men",), ("Women",)) == 0.0
    assert shared_category_depth((), ("Women",)) == 0.0
    assert price_distance(10.0, 10.0) == 0.0
    assert price_distance(10.0, 20.0) == pytest.approx(-np.log(2))
    assert price_distance(None, 20.0) == 0.0


def test_similarities_match_pairwise_cosines() -> None:
    from recommender.ranking.features import similarities

    rng = np.random.default_rng(3)

    def unit(n: int) -> np.ndarray:
        v = rng.normal(size=n)
        return v / np.linalg.norm(v)

    anchor = ItemView("a", {"text": unit(4), "image": unit(3)})
    items = [ItemView("x", {"text": unit(4), "image": unit(3)}), ItemView("y", {"text": unit(4)})]
    history = [ItemView("h1", {"text": unit(4), "image": unit(3)}), ItemView("h2", {"image": unit(3)})]
    sims = similarities(anchor, items, history)
    for i, item in enumerate(items):
        assert sims["text"][i] == pytest.approx(float(anchor.vectors["text"] @ item.vectors["text"]), abs=1e-6)
        expected_hist = max(float(h.vectors["text"] @ item.vectors["text"]) if "text" in h.vectors else 0.0
                            for h in history)
        assert sims["history_text"][i] == pytest.approx(expected_hist, abs=1e-6)
    assert sims["image"][1] == 0.0  # y has no image vector
    assert "behavior" not in sims  # nobody has one
