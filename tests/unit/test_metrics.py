"""Metrics against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recommender.evaluation.metrics import (
    catalog_coverage,
    hit_rate_at_k,
    intra_list_diversity,
    ndcg_at_k,
    novelty,
    recall_at_k,
    reciprocal_rank,
)

RANKED = ["a", "b", "c", "d", "e"]


def test_hit_rate() -> None:
    assert hit_rate_at_k(RANKED, {"c"}, 3) == 1.0
    assert hit_rate_at_k(RANKED, {"d"}, 3) == 0.0


def test_recall() -> None:
    assert recall_at_k(RANKED, {"b", "e", "z"}, 2) == pytest.approx(1 / 3)
    assert recall_at_k(RANKED, {"b", "e", "z"}, 5) == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        recall_at_k(RANKED, set(), 5)


def test_ndcg_by_hand() -> None:
    # hits at ranks 2 and 4: DCG = 1/log2(3) + 1/log2(5); ideal for 2 relevant = 1 + 1/log2(3)
    expected = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k(RANKED, {"b", "d"}, 5) == pytest.approx(expected)
    assert ndcg_at_k(RANKED, {"a"}, 5) == 1.0
    assert ndcg_at_k(RANKED, {"z"}, 5) == 0.0
    # more relevant items than k: the ideal uses only k of them
    assert ndcg_at_k(["a", "b"], {"a", "b", "c"}, 2) == 1.0


def test_duplicates_count_once() -> None:
    assert recall_at_k(["a", "a", "b"], {"a", "b"}, 2) == 1.0
    assert reciprocal_rank(["x", "x", "a"], {"a"}) == 0.5


def test_reciprocal_rank() -> None:
    assert reciprocal_rank(RANKED, {"c", "e"}) == pytest.approx(1 / 3)
    assert reciprocal_rank(RANKED, {"e"}, k=3) == 0.0
    assert reciprocal_rank(RANKED, {"z"}) == 0.0


def test_coverage() -> None:
    assert catalog_coverage([["a", "b"], ["b", "c"]], 10, 2) == pytest.approx(0.3)
    assert catalog_coverage([["a", "b", "c"]], 4, 1) == pytest.approx(0.25)


def test_intra_list_diversity() -> None:
    same = np.array([[1.0, 0.0], [1.0, 0.0]])
    orth = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert intra_list_diversity(same) == pytest.approx(0.0)
    assert intra_list_diversity(orth) == pytest.approx(1.0)
    three = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])  # pair sims: 0, 1, 0 -> mean 1/3
    assert intra_list_diversity(three) == pytest.approx(2 / 3)
    assert intra_list_diversity(np.zeros((1, 2))) == 0.0


def test_novelty() -> None:
    pop = {"a": 50, "b": 25}
    # a: -log2(0.5)=1, b: -log2(0.25)=2, c unseen -> -log2(1/100)
    assert novelty(["a", "b"], pop, 100, 2) == pytest.approx(1.5)
    assert novelty(["c"], pop, 100, 1) == pytest.approx(math.log2(100))
