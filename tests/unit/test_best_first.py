"""The ranker's order: only the head of it is sorted for the top k, with the very result of sorting everything."""

from __future__ import annotations

import numpy as np
import pytest

from recommender.domain import ItemView, RankQuery
from recommender.ranking.features import BehaviourContext, FeatureBuilder
from recommender.ranking.fusion import Rules, configured_model
from recommender.ranking.ranker import FusionRanker, best_first
from recommender.ranking.sources import Popular


@pytest.mark.parametrize("seed", range(5))
def test_the_head_is_the_start_of_the_full_order(seed: int) -> None:
    """Scores with many ties: the head holds the ``head`` best and every one tied with the last, in the full
    order's order (score, then product id)."""
    rng = np.random.default_rng(seed)
    ids = [f"p{i:03d}" for i in rng.permutation(200)]
    scores = rng.integers(0, 12, 200).astype(np.float64) / 4
    full = best_first(ids, scores)
    assert full == [pid for _, pid in sorted(zip((-scores).tolist(), ids, strict=True))]
    for head in (1, 10, 40, 199, 200, 500):
        part = best_first(ids, scores, head)
        assert len(part) >= min(head, 200) and part == full[:len(part)]
        last = scores[ids.index(part[-1])]
        assert all(scores[ids.index(p)] < last for p in full[len(part):])  # nothing tied with the head left out


def test_scores_that_are_not_finite_are_sorted_whole() -> None:
    ids = ["a", "b", "c"]
    assert best_first(ids, np.array([0.5, np.nan, 1.0]), 1) == best_first(ids, np.array([0.5, np.nan, 1.0]))


class Views:
    """60 products: the 45 most popular are one style (one variant group), the other 15 a style each."""

    def __init__(self) -> None:
        self.views = {"a": ItemView("a", {"text": np.ones(2, dtype=np.float32)}, variant_group="a")}
        for i in range(60):
            pid = f"p{i:02d}"
            self.views[pid] = ItemView(pid, variant_group="g" if i < 45 else pid)

    def get_many(self, ids: object) -> dict[str, ItemView]:
        return {p: self.views[p] for p in ids if p in self.views}  # type: ignore[attr-defined]

    def get(self, product_id: str) -> ItemView | None:
        return self.views.get(product_id)


def test_a_variant_cap_that_empties_the_head_ranks_from_the_whole_order() -> None:
    """With one product per style, the sorted head (4 per shown item) holds one style only: the ranker reads the
    whole order, as it would have without the head."""
    popularity = {f"p{i:02d}": float(100 - i) for i in range(60)}
    ranker = FusionRanker("t", [Popular(popularity)], Views(), FeatureBuilder(BehaviourContext(popularity=popularity)),
                          configured_model({"popularity": 1.0}), Rules(max_per_variant_group=1))
    shown = [r.product_id for r in ranker.rank(RankQuery("a", k=10))]
    assert shown == ["p00", *[f"p{i}" for i in range(45, 54)]]
