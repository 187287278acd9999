"""The pure parts of ask retrieval: constraints → store filter, score fusion, rank fusion, the words searched."""

from __future__ import annotations

import pytest

from recommender.ask.model import Constraint, Plan
from recommender.ask.retrieval import fuse_scores, rrf, search_text, store_filter
from recommender.domain import FieldCondition, ProductFilter


def test_constraints_become_one_store_filter() -> None:
    constraints = [Constraint("color", values=("Black",), words="black"),
                   Constraint("category", "not_in", ("Sneakers",), words="not sneakers"),
                   Constraint("price", "range", low=20.0, words="over 20"),
                   Constraint("price", "range", low=10.0, high=60.0, words="10 to 60")]
    f = store_filter(constraints, in_stock_only=True)
    assert f == ProductFilter(price_min=20.0, price_max=60.0, in_stock=True, conditions=(
        FieldCondition("color", ("Black",)), FieldCondition("category", ("Sneakers",), negate=True)))
    assert store_filter([], in_stock_only=False).is_empty
    sold_out = store_filter([Constraint("in_stock", values=("false",), words="sold out")], in_stock_only=True)
    assert sold_out.in_stock is False


def test_scores_are_scaled_per_list_then_weighted() -> None:
    fused = fuse_scores({"hybrid": {"a": 0.9, "b": 0.5, "c": 0.1}, "image": {"c": 0.30, "d": 0.20}},
                        {"hybrid": 1.0, "image": 0.5})
    # a: 1.0; b: 0.5; c: 0 + 0.5 × 1.0 = 0.5; d: 0 + 0.5 × 0 = 0 (ties by id)
    assert fused == [("a", 1.0), ("b", pytest.approx(0.5)), ("c", 0.5), ("d", 0.0)]
    assert fuse_scores({"only": {"x": 0.3}}, {}) == [("x", 1.0)]


def test_reciprocal_rank_fusion_by_hand() -> None:
    fused = dict(rrf({"a": ["p", "q"], "b": ["q"]}, {"b": 2.0}))
    assert fused["p"] == pytest.approx(1 / 61)
    assert fused["q"] == pytest.approx(1 / 62 + 2 / 61)


def test_the_search_words_are_the_free_words_and_the_positive_constraints() -> None:
    plan = Plan("find", constraints=(Constraint("color", values=("Black",), words="black"),
                                     Constraint("text", "not_in", ("leather",), words="not leather"),
                                     Constraint("category", values=("Sneakers",), words="(the photo)")),
                query_text="gym")
    assert search_text(plan, "black gym shoes not leather") == "black gym"
    assert search_text(Plan("find"), "  hello ") == "hello"
