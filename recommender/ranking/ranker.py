"""The ranker: candidate sources → features → fusion → rules/diversity → top k with per-signal breakdown."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import chain
from operator import attrgetter
from typing import Protocol

import numpy as np

from recommender.domain import RECENT_HISTORY, Candidate, ItemView, RankedItem, RankQuery
from recommender.ranking.features import FEATURES, FeatureBuilder
from recommender.ranking.fusion import RankingModel, Rules, allowed_ids, select
from recommender.ranking.rounding import round_floats
from recommender.ranking.sources import CandidateSource
from recommender.store.item_cache import ItemLookup

EXPLAINED = ("text", "image", "behavior", "cooccurrence", "copurchase", "history_text", "history_image",
             "session", "als_user", "popularity", "recent_popularity", "same_category", "same_variant",
             "same_color", "shared_attributes", "price_distance", "sasrec")
# features that are another view of an explained signal: their contribution is counted in that signal's
# (a source's rank of the candidate belongs to the source's signal; the text gap to the text cosine)
SIGNAL_OF = {"rr_text": "text", "rr_image": "image", "rr_behavior": "behavior", "rr_cooccurrence": "cooccurrence",
             "rr_session": "session", "rr_als_user": "als_user", "rr_popularity": "popularity", "text_gap": "text",
             "rr_sasrec": "sasrec"}
_PRODUCT_ID = attrgetter("product_id")
HEAD_PER_K = 4  # candidates sorted per shown item (all of them when the variant cap leaves too few)
_VALUE_COLUMNS = [FEATURES.index(name) for name in EXPLAINED]
_BREAKDOWN_KEYS = tuple(key for name in EXPLAINED for key in (name, f"{name}_contribution"))
_GROUPS = np.zeros((len(FEATURES), len(EXPLAINED)))
for _i, _name in enumerate(FEATURES):
    _signal = SIGNAL_OF.get(_name, _name)
    if _signal in EXPLAINED:
        _GROUPS[_i, EXPLAINED.index(_signal)] = 1.0


class Recommender(Protocol):
    """Ranks products for a query.

    Contract: at most ``query.k`` items, best first, no duplicates, never the anchor or an excluded item;
    each item carries its fused score and a per-signal breakdown (empty for single-signal baselines).
    """

    name: str

    def rank(self, query: RankQuery) -> list[RankedItem]: ...


@dataclass(frozen=True)
class CandidateSet:
    """Candidates that passed the rules, in pool order, with their feature rows (one per id)."""

    ids: list[str]
    views: dict[str, ItemView]
    rows: np.ndarray
    proposals: dict[str, list[Candidate]]


class FusionRanker:
    """Unions the candidates of every source and orders them by a fusion model."""

    def __init__(self, name: str, sources: Sequence[CandidateSource], items: ItemLookup, features: FeatureBuilder,
                 model: RankingModel, rules: Rules, per_source: int = 100,
                 pool: ThreadPoolExecutor | None = None) -> None:
        self.name = name
        self.sources = list(sources)
        self.items = items
        self.features = features
        self.model = model
        self.rules = rules
        self.per_source = per_source
        # a long-lived caller (the API) passes one shared pool; otherwise the ranker owns one
        self._pool = pool or ThreadPoolExecutor(max_workers=max(1, len(self.sources)), thread_name_prefix="sources")

    def with_sources(self, sources: Sequence[CandidateSource]) -> FusionRanker:
        """The same ranker over other sources (e.g. an anchor's stored pool), sharing the thread pool."""
        return FusionRanker(self.name, sources, self.items, self.features, self.model, self.rules, self.per_source,
                            self._pool)

    def propose(self, query: RankQuery) -> dict[str, list[Candidate]]:
        """Every source's candidates for the query: concurrently when some wait on the vector store, else in this
        thread (in-memory sources finish faster than a hand-off to another thread). The remote sources (the store's
        neighbours of the anchor) query only for a page with an anchor."""
        if not query.anchor_id or not any(getattr(source, "remote", False) for source in self.sources):
            return {source.name: source.candidates(query, self.per_source) for source in self.sources}
        self.items.get_many([query.anchor_id])  # one fetch of the anchor, shared by the vector sources
        results = self._pool.map(lambda source: source.candidates(query, self.per_source), self.sources)
        return {source.name: cands for source, cands in zip(self.sources, results, strict=True)}

    def candidate_set(self, query: RankQuery) -> CandidateSet:
        """The allowed candidates with their views and feature rows — shared by ranking and offline training."""
        proposals = self.propose(query)
        pool = list(dict.fromkeys(map(_PRODUCT_ID, chain.from_iterable(proposals.values()))))
        wanted = [*([query.anchor_id] if query.anchor_id else []), *pool, *query.history[:RECENT_HISTORY]]
        views = self.items.get_many(wanted)
        anchor = views.get(query.anchor_id) if query.anchor_id else None
        ids = allowed_ids(pool, views, query, self.rules)
        history = [views[h] for h in query.history[:RECENT_HISTORY] if h in views]
        rows = self.features.rows(query, anchor, {p: views[p] for p in ids}, history, proposals)
        return CandidateSet(ids, views, rows, proposals)

    def rank(self, query: RankQuery) -> list[RankedItem]:
        """The top ``query.k`` products with scores and per-signal breakdowns."""
        cs = self.candidate_set(query)
        ids, views, rows, proposals = cs.ids, cs.views, cs.rows, cs.proposals
        if not ids:
            return []
        predicted = self.model.predict(rows)
        by_id = dict(zip(ids, predicted.tolist(), strict=True))
        head = HEAD_PER_K * query.k if self.rules.diversity <= 0 < query.k else None  # select reads the top k only
        chosen = select(best_first(ids, predicted, head), by_id, views, query.k, self.rules)
        if head is not None and len(chosen) < query.k and head < len(ids):  # the variant cap left too few in the head
            chosen = select(best_first(ids, predicted), by_id, views, query.k, self.rules)
        position = dict(zip(ids, range(len(ids)), strict=True))
        index = [position[pid] for pid in chosen]
        # contributions only for what is shown (tree SHAP costs more than the scores)
        signals = signal_breakdown(rows[index], self.model.contributions(rows[index]))
        shown = set(chosen)
        sources: dict[str, list[str]] = {pid: [] for pid in chosen}
        for n, cands in proposals.items():  # each shown product's sources, in source order
            for pid in shown.intersection(map(_PRODUCT_ID, cands)):
                sources[pid].append(n)
        return [RankedItem(pid, by_id[pid], signals[j], tuple(sources[pid])) for j, pid in enumerate(chosen)]


def best_first(ids: Sequence[str], scores: np.ndarray, head: int | None = None) -> list[str]:
    """``ids`` by score, best first, then by product id; with ``head``, only the ``head`` best (and any tied with
    the last of them): the first ones of the full order, without sorting a page's ~180 candidates for its top 10."""
    if head is not None and len(ids) > head and np.isfinite(scores).all():
        last = np.partition(scores, len(ids) - head)[len(ids) - head]  # the head-th best score
        keep = np.flatnonzero(scores >= last)
        pairs = zip((-scores[keep]).tolist(), [ids[i] for i in keep.tolist()], strict=True)
    else:
        pairs = zip((-scores).tolist(), ids, strict=True)
    return [pid for _, pid in sorted(pairs)]  # (-score, id) pairs sorted as they are (no key function per id)


def signal_breakdown(rows: np.ndarray, contributions: np.ndarray) -> list[dict[str, float]]:
    """Per row: each explained signal's value and ``<signal>_contribution`` (its features' contributions summed,
    SIGNAL_OF), rounded to 5 digits: what the explanations and the API show."""
    grouped = np.asarray(contributions, dtype=np.float64) @ _GROUPS
    table = np.empty((len(grouped), len(_BREAKDOWN_KEYS)))
    table[:, 0::2] = np.asarray(rows, dtype=np.float64)[:, _VALUE_COLUMNS]
    table[:, 1::2] = grouped
    flat, width = round_floats(table, 5), len(_BREAKDOWN_KEYS)
    return [dict(zip(_BREAKDOWN_KEYS, flat[i:i + width], strict=True)) for i in range(0, len(flat), width)]


class SourceRanker:
    """A single-signal baseline: one source's own order, with the same rules as the fused ranker."""

    def __init__(self, source: CandidateSource, items: ItemLookup, rules: Rules,
                 fallback: CandidateSource | None = None, depth: int = 100) -> None:
        self.name = source.name
        self.source = source
        self.items = items
        self.rules = rules
        self.fallback = fallback
        self.depth = depth

    def rank(self, query: RankQuery) -> list[RankedItem]:
        """The source's candidates in its own order (then the fallback's), rules applied."""
        cands = self.source.candidates(query, self.depth)
        if self.fallback is not None and len(cands) < self.depth:
            cands += self.fallback.candidates(query, self.depth)
        ids = list(dict.fromkeys(c.product_id for c in cands))
        views = self.items.get_many(ids)
        scores: dict[str, float] = {}
        for c in cands:
            scores.setdefault(c.product_id, c.score if c.source == self.name else -1e9 - c.rank)
        order = allowed_ids(ids, views, query, self.rules)
        chosen = select(order, scores, views, query.k, self.rules)
        return [RankedItem(pid, scores[pid], {self.name: scores[pid]}, (self.name,)) for pid in chosen]
