"""The anchor's candidate pool: its neighbours by every named vector, stored by the refresh, read without a round trip.

The live ranker asks the vector store for the anchor's ``text`` and ``image`` neighbours on every request. Those
lists depend on the anchor alone (when no filter is pushed down), so the refresh stores them beside each
precomputed list (``PrecomputedLists.pool``), ranks the anonymous list from them, and a shopper's product page
re-ranks the same pool with the shopper's own sources and features: the same sources, features and model as the
live path, without a Weaviate query. A product with no stored pool (new since the refresh), or a filtered
request, is ranked live.
"""

from __future__ import annotations

from collections.abc import Sequence

from recommender.domain import Candidate, RankQuery
from recommender.ranking.precomputed import Pool
from recommender.ranking.sources import CandidateSource, NearVector, VectorNeighbours, ranked_candidates
from recommender.store.item_cache import ItemLookup

NEIGHBOUR_VECTORS = ("text", "image")


class StoredNeighbours:
    """The anchor's neighbours by one named vector from its stored pool: what ``VectorNeighbours`` would have
    proposed from the same hits (the first ``n + 1`` hits, the anchor and exclusions left out)."""

    def __init__(self, vector: str, hits: Sequence[tuple[str, float]]) -> None:
        self.name = vector
        self._hits = hits

    def candidates(self, query: RankQuery, n: int) -> list[Candidate]:
        """The stored neighbours, at most ``n``."""
        return ranked_candidates(self.name, self._hits[: n + 1], query, n)


def neighbour_pool(items: ItemLookup, near: NearVector, anchor_id: str, depth: int) -> Pool:
    """The anchor's unfiltered neighbours by each of NEIGHBOUR_VECTORS, ``depth`` hits each (none for a vector the
    anchor lacks); what the refresh stores."""
    anchor = items.get(anchor_id)
    return {name: [(pid, float(score)) for pid, score in near(anchor.vectors[name], name, depth, None)]
            if anchor is not None and name in anchor.vectors else [] for name in NEIGHBOUR_VECTORS}


def pooled_sources(sources: Sequence[CandidateSource], pool: Pool) -> tuple[CandidateSource, ...]:
    """``sources`` with each vector-store neighbour source replaced by the pool's stored neighbours."""
    return tuple(StoredNeighbours(s.name, pool.get(s.name, ())) if isinstance(s, VectorNeighbours) else s
                 for s in sources)
