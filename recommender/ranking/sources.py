"""Named candidate sources: each proposes products for a query from one kind of evidence.

Sources are cheap to combine: the ranker asks each for up to ``n`` candidates, unions them, and scores the
union with every signal. A source with nothing to say (cold anchor, unknown shopper) returns ``[]``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

from recommender.behaviour.als import CollaborativeModel
from recommender.behaviour.cooccurrence import CoOccurrence
from recommender.caching import BoundedDict
from recommender.domain import Candidate, ProductFilter, RankQuery
from recommender.store.item_cache import ItemLookup

if TYPE_CHECKING:  # torch is imported only where a sequence model is loaded
    from recommender.sequence.store import SequenceModel

KEPT_ANSWERS = 4096  # anchors whose answers an AnchorKept source keeps
KEPT_SHOPPERS = 1024  # shoppers whose answers a shopper source keeps (~9 kB each at n = 100)
# (query vector, named vector, n, filters pushed down) -> [(product_id, cosine similarity)], best first
NearVector = Callable[[np.ndarray, str, int, ProductFilter | None], Sequence[tuple[str, float]]]


class CandidateSource(Protocol):
    """Proposes candidates for a query.

    Contract: at most ``n`` candidates, best first, each with this source's ``name``, its own score
    (higher is better) and rank (1-based); never the anchor itself; ``[]`` when it has no evidence.
    """

    name: str

    def candidates(self, query: RankQuery, n: int) -> list[Candidate]: ...


def ranked_candidates(name: str, scored: Sequence[tuple[str, float]], query: RankQuery, n: int) -> list[Candidate]:
    """``scored`` as this source's candidates: ranks from 1, the anchor and exclusions left out, at most ``n``."""
    out: list[Candidate] = []
    anchor, exclude = query.anchor_id, query.exclude
    for pid, score in scored:
        if pid != anchor and pid not in exclude:
            out.append(Candidate(pid, name, float(score), len(out) + 1))
            if len(out) >= n:
                break
    return out


class VectorNeighbours:
    """Nearest neighbours of the anchor by one named vector, from the vector store (a round trip per request)."""

    remote = True  # waits on the store: the ranker asks such sources concurrently

    def __init__(self, vector: str, items: ItemLookup, near: NearVector) -> None:
        self.name = vector
        self._items = items
        self._near = near

    def candidates(self, query: RankQuery, n: int) -> list[Candidate]:
        """Neighbours of the anchor's ``vector``; [] when the anchor has no such vector."""
        anchor = self._items.get(query.anchor_id) if query.anchor_id else None
        if anchor is None or self.name not in anchor.vectors:
            return []
        hits = self._near(anchor.vectors[self.name], self.name, n + 1, query.filters)
        return ranked_candidates(self.name, hits, query, n)


class CoOccurring:
    """Products seen (or bought) in the same sessions as the anchor."""

    def __init__(self, cooc: CoOccurrence, kind: str = "view", name: str = "cooccurrence") -> None:
        self.name = name
        self._cooc = cooc
        self._kind = kind

    def candidates(self, query: RankQuery, n: int) -> list[Candidate]:
        """Co-occurring products, most similar first."""
        if not query.anchor_id:
            return []
        return ranked_candidates(self.name, self._cooc.similar(query.anchor_id, n + 1, self._kind), query, n)


class SessionCoOccurring:
    """Products that co-occur with the shopper's recent products (the session's momentum)."""

    def __init__(self, cooc: CoOccurrence, recent: int = 5, name: str = "session") -> None:
        self.name = name
        self._cooc = cooc
        self._recent = recent
        # a shopper opens page after page with the same recent products: their summed list is kept
        self._kept: BoundedDict[tuple[tuple[str, ...], int, frozenset[str]], list[tuple[str, float]]] = \
            BoundedDict(KEPT_SHOPPERS)

    def candidates(self, query: RankQuery, n: int) -> list[Candidate]:
        """Summed co-occurrence similarity over the most recent history items."""
        recent = tuple(query.history[: self._recent])
        key = (recent, n, query.exclude)
        scored = self._kept.get(key)
        if scored is None:
            # the anchor and the exclusions are the most ``ranked_candidates`` can drop from the head kept
            scored = self._kept.put(key, self._summed(recent, n)[: n + 1 + len(query.exclude)])
        return ranked_candidates(self.name, scored, query, n)

    def _summed(self, recent: tuple[str, ...], n: int) -> list[tuple[str, float]]:
        """Every product co-occurring with the recent ones, by summed similarity, then product id."""
        scores: dict[str, float] = {}
        get = scores.get
        for pid in recent:
            for other, similarity in self._cooc.similar(pid, n):
                scores[other] = get(other, 0.0) + similarity
        # highest summed similarity first, then product id: (-score, id) pairs sorted as they are
        ordered = sorted(zip([-s for s in scores.values()], scores, strict=True))
        return [(pid, -neg) for neg, pid in ordered]


class AlsSimilar:
    """Items whose ALS factors are closest to the anchor's (item–item collaborative filtering)."""

    def __init__(self, model: CollaborativeModel, name: str = "als_item") -> None:
        self.name = name
        self._model = model

    def candidates(self, query: RankQuery, n: int) -> list[Candidate]:
        """ALS item–item neighbours of the anchor."""
        if not query.anchor_id:
            return []
        return ranked_candidates(self.name, self._model.similar_items(query.anchor_id, n + 1), query, n)


class AlsForUser:
    """ALS recommendations for a known shopper."""

    def __init__(self, model: CollaborativeModel, name: str = "als_user") -> None:
        self.name = name
        self._model = model
        # the model's answer depends on the shopper and their purchases alone: kept for their next page (a scan of
        # every item's factors, which grows with the catalog)
        self._kept: BoundedDict[tuple[str, int, frozenset[str]], list[tuple[str, float]]] = BoundedDict(KEPT_SHOPPERS)

    def candidates(self, query: RankQuery, n: int) -> list[Candidate]:
        """The shopper's top predicted items; [] for an unknown shopper."""
        if not query.user_id:
            return []
        key = (query.user_id, n, query.purchased)
        recs = self._kept.get(key)
        if recs is None:
            recs = self._kept.put(key, self._model.recommend(query.user_id, n + 1, exclude=query.purchased))
        return ranked_candidates(self.name, recs, query, n)


class SequenceNext:
    """The sequence model's most likely next products after the shopper's recent history (SASRec)."""

    def __init__(self, model: SequenceModel, name: str = "sasrec") -> None:
        self.name = name
        self._model = model

    def candidates(self, query: RankQuery, n: int) -> list[Candidate]:
        """Top next items given the history (most recent first in the query, oldest first for the model)."""
        if not query.history:
            return []
        recs = self._model.recommend(list(reversed(query.history)), n + 1, exclude=query.purchased)
        return ranked_candidates(self.name, recs, query, n)


class Popular:
    """The most popular products: the fallback that always has an answer."""

    def __init__(self, popularity: Mapping[str, float], name: str = "popularity") -> None:
        self.name = name
        self._ordered = sorted(popularity.items(), key=lambda kv: (-kv[1], kv[0]))

    def candidates(self, query: RankQuery, n: int) -> list[Candidate]:
        """Top products by popularity."""
        return ranked_candidates(self.name, self._ordered[: n + len(query.exclude) + 1], query, n)


class AnchorKept:
    """A source whose answer depends on the anchor alone (and the exclusions), its answers kept: the anchor's
    co-occurring, ALS-similar and popular products are the same for every shopper on that page."""

    def __init__(self, source: CandidateSource, size: int = KEPT_ANSWERS) -> None:
        self.name = source.name
        self._source = source
        self._kept: BoundedDict[tuple[str | None, int, frozenset[str]], list[Candidate]] = BoundedDict(size)

    def candidates(self, query: RankQuery, n: int) -> list[Candidate]:
        """The wrapped source's candidates (a copy of the kept list)."""
        key = (query.anchor_id, n, query.exclude)
        kept = self._kept.get(key)
        if kept is None:
            kept = self._kept.put(key, self._source.candidates(query, n))
        return list(kept)
