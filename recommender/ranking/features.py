"""Per-(anchor, candidate) signals the fusion ranker scores: similarities, behaviour, business context.

Every feature is a number where larger means "more related" (price distance is negated), computed the same
way online and offline, so a model learned offline scores live requests without skew.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from recommender.behaviour.als import CollaborativeModel
from recommender.behaviour.cooccurrence import CoOccurrence
from recommender.domain import Candidate, ItemView, RankQuery

if TYPE_CHECKING:  # torch is imported only where a sequence model is loaded
    from recommender.sequence.store import SequenceModel

FEATURES = (
    "text", "image", "behavior",            # anchor ↔ candidate cosine per named vector
    "cooccurrence", "copurchase",           # anchor ↔ candidate session evidence
    "history_text", "history_image",        # best match to the shopper's recent products
    "session", "als_user",                  # session co-occurrence, the shopper's ALS preference
    "popularity", "recent_popularity", "same_category", "same_variant", "same_color", "shared_attributes",
    "price_distance",
    "rr_text", "rr_image", "rr_behavior", "rr_cooccurrence", "rr_session", "rr_als_user", "rr_popularity",
    # context for the learned ranker's trees: how known the anchor and shopper are, how many sources agree,
    # how far the candidate's text cosine is below the query's best (a per-query normalisation)
    "anchor_popularity", "history_length", "n_sources", "text_gap",
    "sasrec", "rr_sasrec",                  # the sequence model's next-item score after the shopper's history
)
RECENT_HISTORY = 5
_COLUMN = {name: i for i, name in enumerate(FEATURES)}


def _matrix(items: Sequence[ItemView], name: str, dim: int) -> np.ndarray:
    """Rows of one named vector; an item without it gets a zero row (so its cosine is 0)."""
    out = np.zeros((len(items), dim), dtype=np.float32)
    for i, item in enumerate(items):
        vec = item.vectors.get(name)
        if vec is not None:
            out[i] = vec
    return out


def similarities(anchor: ItemView | None, items: Sequence[ItemView], history: Sequence[ItemView]
                 ) -> dict[str, np.ndarray]:
    """Cosines of every item with the anchor (per named vector) and its best match in the history,
    as matrix products rather than one dot product per pair; a missing vector counts as cosine 0."""
    out: dict[str, np.ndarray] = {}
    for name in ("text", "image", "behavior"):
        dim = next((len(v.vectors[name]) for v in (*items, *history, *([anchor] if anchor else []))
                    if name in v.vectors), 0)
        if dim == 0 or not items:
            continue
        m = _matrix(items, name, dim)
        if anchor is not None:
            out[name] = m @ _matrix([anchor], name, dim)[0]
        if history and name in ("text", "image"):
            out[f"history_{name}"] = (m @ _matrix(history, name, dim).T).max(axis=1)
    return out


def shared_category_depth(a: Sequence[str], b: Sequence[str]) -> float:
    """Share of category levels the two paths have in common from the top (0..1)."""
    if not a or not b:
        return 0.0
    shared = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        shared += 1
    return shared / max(len(a), len(b))


def shared_attributes(a: Sequence[tuple[str, str]], b: Sequence[tuple[str, str]]) -> float:
    """Share of the anchor's extra attributes (pattern, department, …) the candidate has with equal values."""
    if not a:
        return 0.0
    other = dict(b)
    return sum(1 for k, v in a if other.get(k) == v) / len(a)


def price_distance(a: float | None, b: float | None) -> float:
    """−|log(price ratio)|: 0 for equal prices, more negative the further apart; 0 when unknown."""
    if not a or not b or a <= 0 or b <= 0:
        return 0.0
    return -abs(math.log(b / a))


@dataclass(frozen=True)
class BehaviourContext:
    """The behavioural evidence features draw on (any part may be absent for a cold start)."""

    cooccurrence: CoOccurrence | None = None
    model: CollaborativeModel | None = None
    popularity: Mapping[str, float] = field(default_factory=dict)
    recent_popularity: Mapping[str, float] = field(default_factory=dict)  # the last weeks only: what's trending
    sequence: SequenceModel | None = None

    @property
    def max_log_popularity(self) -> float:
        """Normaliser that maps popularity into 0..1."""
        return math.log1p(max(self.popularity.values(), default=0.0)) or 1.0

    @property
    def max_log_recent_popularity(self) -> float:
        """Normaliser that maps recent popularity into 0..1."""
        return math.log1p(max(self.recent_popularity.values(), default=0.0)) or 1.0


class FeatureBuilder:
    """Computes FEATURES for every candidate of one query."""

    def __init__(self, behaviour: BehaviourContext) -> None:
        self.behaviour = behaviour
        self._max_pop = behaviour.max_log_popularity
        self._max_recent = behaviour.max_log_recent_popularity

    def rows(self, query: RankQuery, anchor: ItemView | None, candidates: Mapping[str, ItemView],
             history: Sequence[ItemView], proposals: Mapping[str, list[Candidate]]) -> np.ndarray:
        """A (len(candidates), len(FEATURES)) float32 matrix, rows in ``candidates`` order.

        Built column by column (one comprehension per feature, not one dict per candidate): this runs for every
        live request and every task the fusion is trained and gated on.
        """
        pids, items = list(candidates), list(candidates.values())
        out = np.zeros((len(pids), len(FEATURES)), dtype=np.float32)
        if not pids:
            return out

        def put(name: str, values: Sequence[float] | np.ndarray) -> None:
            out[:, _COLUMN[name]] = values

        for name, values in similarities(anchor, items, history[:RECENT_HISTORY]).items():
            put(name, values)
        b = self.behaviour
        put("popularity", [math.log1p(b.popularity.get(p, 0.0)) / self._max_pop for p in pids])
        put("recent_popularity", [math.log1p(b.recent_popularity.get(p, 0.0)) / self._max_recent for p in pids])
        if anchor is not None:
            put("same_category", [shared_category_depth(anchor.category, i.category) for i in items])
            put("same_variant", [float(anchor.variant_group == i.variant_group) for i in items])
            put("same_color", [float(bool(anchor.color) and anchor.color == i.color) for i in items])
            put("shared_attributes", [shared_attributes(anchor.attributes, i.attributes) for i in items])
            put("price_distance", [price_distance(anchor.price, i.price) for i in items])
        user_scores = self._user_scores(query, pids)
        put("als_user", [user_scores.get(p, 0.0) for p in pids])
        co = self._co_rows(anchor.product_id if anchor else None, query.history[:RECENT_HISTORY])
        put("cooccurrence", [co.anchor_view.get(p, 0.0) for p in pids])
        put("copurchase", [math.log1p(co.anchor_purchase.get(p, 0.0)) for p in pids])
        put("session", [sum(r.get(p, 0.0) for r in co.history_view) for p in pids])
        reciprocal = _reciprocal_ranks(proposals)
        for source in ("text", "image", "behavior", "cooccurrence", "session", "als_user", "popularity", "sasrec"):
            put(f"rr_{source}", [reciprocal.get((source, p), 0.0) for p in pids])
        put("sasrec", sequence_scores(self.behaviour.sequence, query.history, pids))
        self._context(out, query, anchor, proposals, pids)
        return out

    def _context(self, out: np.ndarray, query: RankQuery, anchor: ItemView | None,
                 proposals: Mapping[str, list[Candidate]], pids: list[str]) -> None:
        """The query-context columns (see FEATURES)."""
        if anchor is not None:
            pop = self.behaviour.popularity.get(anchor.product_id, 0.0)
            out[:, _COLUMN["anchor_popularity"]] = math.log1p(pop) / self._max_pop
        out[:, _COLUMN["history_length"]] = math.log1p(len(query.history))
        proposed: dict[str, int] = {}
        for cands in proposals.values():
            for c in cands:
                proposed[c.product_id] = proposed.get(c.product_id, 0) + 1
        out[:, _COLUMN["n_sources"]] = [proposed.get(p, 0) for p in pids]
        text = out[:, _COLUMN["text"]]
        out[:, _COLUMN["text_gap"]] = text - text.max()

    def _co_rows(self, anchor_id: str | None, history: Sequence[str]) -> _CoRows:
        cooc = self.behaviour.cooccurrence
        if cooc is None:
            return _CoRows({}, {}, [])
        anchor_view = co_similarities(cooc, anchor_id, "view") if anchor_id else {}
        anchor_purchase = co_counts(cooc, anchor_id, "purchase") if anchor_id else {}
        return _CoRows(anchor_view, anchor_purchase, [co_similarities(cooc, h, "view") for h in history])

    def _user_scores(self, query: RankQuery, pids: list[str]) -> dict[str, float]:
        model = self.behaviour.model
        if model is None or not query.user_id:
            return {}
        u = model.users.index(query.user_id)
        if u is None:
            return {}
        out = {}
        for pid in pids:
            j = model.items.index(pid)
            if j is not None and model.trained[j]:
                out[pid] = float(model.item_factors[j] @ model.user_factors[u])
        return out


def sequence_scores(model: SequenceModel | None, history: Sequence[str], pids: Sequence[str]) -> list[float]:
    """The sequence model's next-item score of each product after ``history`` (most recent first); 0 without one."""
    ids = model.encode(list(reversed(history))) if model is not None else []
    if model is None or not ids:
        return [0.0] * len(pids)
    scores = model.score_batch([ids])[0]
    index = [model.items.index(p) for p in pids]
    return [float(scores[j]) if j is not None else 0.0 for j in index]


@dataclass(frozen=True)
class _CoRows:
    anchor_view: dict[str, float]
    anchor_purchase: dict[str, float]
    history_view: list[dict[str, float]]


def co_counts(cooc: CoOccurrence, product_id: str, kind: str) -> dict[str, float]:
    """Sessions shared with ``product_id`` at ``kind`` or stronger, per co-occurring product."""
    i = cooc.items.index(product_id)
    if i is None:
        return {}
    row = cooc.counts[kind].getrow(i)
    return {cooc.items.id(int(j)): float(c) for j, c in zip(row.indices, row.data, strict=True)}


def co_similarities(cooc: CoOccurrence, product_id: str, kind: str) -> dict[str, float]:
    """Cosine of session incidence with ``product_id``: count / sqrt(sessions(a) · sessions(b))."""
    i = cooc.items.index(product_id)
    if i is None:
        return {}
    row = cooc.counts[kind].getrow(i)
    spi = cooc.sessions_per_item
    return {cooc.items.id(int(j)): float(c) / math.sqrt(float(spi[i]) * float(spi[j]))
            for j, c in zip(row.indices, row.data, strict=True)}


def _reciprocal_ranks(proposals: Mapping[str, list[Candidate]]) -> dict[tuple[str, str], float]:
    return {(source, c.product_id): 1.0 / c.rank for source, cands in proposals.items() for c in cands}
