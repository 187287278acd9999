"""Per-(anchor, candidate) signals the fusion ranker scores: similarities, behaviour, business context.

Every feature is a number where larger means "more related" (price distance is negated), computed the same
way online and offline, so a model learned offline scores live requests without skew.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain, repeat
from operator import attrgetter
from typing import TYPE_CHECKING

import numpy as np

from recommender.behaviour.als import CollaborativeModel
from recommender.behaviour.cooccurrence import CoOccurrence
from recommender.caching import BoundedDict
from recommender.domain import RECENT_HISTORY, Candidate, ItemView, RankQuery

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
_COLUMN = {name: i for i, name in enumerate(FEATURES)}
# the columns that depend on the anchor and the candidate alone (not on the shopper): computed once per pair and kept
ANCHOR_COLUMNS = ("text", "image", "behavior", "same_category", "same_variant", "same_color", "shared_attributes",
                  "price_distance", "cooccurrence", "copurchase")
_ANCHOR_INDEX = [_COLUMN[name] for name in ANCHOR_COLUMNS]
_ANCHOR_COLUMN = {name: j for j, name in enumerate(ANCHOR_COLUMNS)}
RR_SOURCES = frozenset(("text", "image", "behavior", "cooccurrence", "session", "als_user", "popularity", "sasrec"))
_PRODUCT_ID, _RANK = attrgetter("product_id"), attrgetter("rank")
ANCHORS_KEPT, PAIRS_KEPT = 1024, 600  # anchors a FeatureBuilder keeps (least recently used out), pairs each


def _matrix(items: Sequence[ItemView], name: str, dim: int) -> np.ndarray:
    """Rows of one named vector; an item without it gets a zero row (so its cosine is 0)."""
    if not items:
        return np.zeros((0, dim), dtype=np.float32)
    zero = np.zeros(dim, dtype=np.float32)
    return np.array([item.vectors.get(name, zero) for item in items], dtype=np.float32)  # one copy, in C


def similarities(anchor: ItemView | None, items: Sequence[ItemView], history: Sequence[ItemView],
                 stacked: dict[tuple[str, int], np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Cosines of every item with the anchor (per named vector) and its best match in the history,
    as matrix products rather than one dot product per pair; a missing vector counts as cosine 0. ``stacked``
    keeps the items' matrices for another call on the same items."""
    out: dict[str, np.ndarray] = {}
    for name in ("text", "image", "behavior"):
        with_history = bool(history) and name in ("text", "image")
        if not items or (anchor is None and not with_history):  # nothing would read this vector's matrix
            continue
        dim = next((len(v.vectors[name]) for v in (*items, *history, *([anchor] if anchor else []))
                    if name in v.vectors), 0)
        if dim == 0:
            continue
        m = stacked.get((name, dim)) if stacked is not None else None
        if m is None:
            m = _matrix(items, name, dim)
            if stacked is not None:
                stacked[name, dim] = m
        if anchor is not None:  # each cosine on its own (not a BLAS product, whose last bit depends on the batch)
            out[name] = np.einsum("ij,j->i", m, _matrix([anchor], name, dim)[0])
        if with_history:
            out[f"history_{name}"] = (m @ _matrix(history, name, dim).T).max(axis=1)
    return out


def shared_category_depth(a: Sequence[str], b: Sequence[str]) -> float:
    """Share of category levels the two paths have in common from the top (0..1)."""
    if not a or not b:
        return 0.0
    if a == b:
        return 1.0
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
        self._table = _ProductTable(behaviour, self._max_pop, self._max_recent)
        self._anchors: OrderedDict[str, _AnchorSide] = OrderedDict()
        self._lock = threading.Lock()
        self._co_views: BoundedDict[str, tuple[np.ndarray, np.ndarray]] = BoundedDict(ANCHORS_KEPT)

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

        stacked: dict[tuple[str, int], np.ndarray] = {}  # the candidates' vector matrices, when built for both
        if anchor is not None:
            out[:, _ANCHOR_INDEX] = self._anchor_columns(anchor, pids, items, stacked)
        for name, values in similarities(None, items, history[:RECENT_HISTORY], stacked).items():  # history_* only
            put(name, values)
        position = {p: i for i, p in enumerate(pids)}
        rows = self._table.rows(pids)  # one lookup per candidate; the per-product columns are array reads
        put("popularity", self._table.popularity[rows])
        put("recent_popularity", self._table.recent[rows])
        self._user_scores(query, rows, out[:, _COLUMN["als_user"]])
        put("session", self._session(query, self._table.cooc[rows]))
        put("sasrec", sequence_scores(self.behaviour.sequence, query.history, pids))
        self._proposed(out, proposals, position)
        self._context(out, query, anchor)
        return out

    def _session(self, query: RankQuery, cooc: np.ndarray) -> np.ndarray:
        """Sum of the co-view similarities with the shopper's recent products, in history order; ``cooc`` is each
        candidate's co-occurrence index (-1 when it has none), matched against each row's sorted indices."""
        session = np.zeros(len(cooc))
        for h in query.history[:RECENT_HISTORY] if self.behaviour.cooccurrence is not None else ():
            js, sims = self._co_view(h)
            if len(js) == 0:
                continue
            at = np.minimum(np.searchsorted(js, cooc), len(js) - 1)
            hit = js[at] == cooc
            session[hit] += sims[at[hit]]
        return session

    @staticmethod
    def _proposed(out: np.ndarray, proposals: Mapping[str, list[Candidate]], position: Mapping[str, int]) -> None:
        """``rr_<source>`` (1 / rank in that source, the last listing of a product counting) and ``n_sources``, read
        off every source's list at once: one candidate position, rank and column per listing."""
        lists = list(proposals.values())
        total = sum(map(len, lists))
        index = np.fromiter(map(position.get, map(_PRODUCT_ID, chain.from_iterable(lists)), repeat(-1)), np.int64,
                            total)
        listed = index >= 0
        out[:, _COLUMN["n_sources"]] = np.bincount(index[listed], minlength=len(position))  # listings (exact)
        column = np.repeat([_COLUMN[f"rr_{s}"] if s in RR_SOURCES else -1 for s in proposals], list(map(len, lists)))
        keep = listed & (column >= 0)
        if not keep.any():
            return
        ranks = np.fromiter(map(_RANK, chain.from_iterable(lists)), np.float64, total)[keep]
        at, col = index[keep], column[keep]
        key = at * len(FEATURES) + col
        order = np.argsort(key, kind="stable")  # a (product, source)'s listings in list order: the last one counts
        last = order[np.append(key[order][1:] != key[order][:-1], True)]
        out[at[last], col[last]] = 1.0 / ranks[last]

    def _context(self, out: np.ndarray, query: RankQuery, anchor: ItemView | None) -> None:
        """The query-context columns (see FEATURES)."""
        if anchor is not None:
            pop = self.behaviour.popularity.get(anchor.product_id, 0.0)
            out[:, _COLUMN["anchor_popularity"]] = math.log1p(pop) / self._max_pop
        out[:, _COLUMN["history_length"]] = math.log1p(len(query.history))
        text = out[:, _COLUMN["text"]]
        out[:, _COLUMN["text_gap"]] = text - text.max()

    def _co_view(self, product_id: str) -> tuple[np.ndarray, np.ndarray]:
        """``co_similarities`` of a history product at ``view`` as (co-occurrence indices ascending, similarities),
        kept (a shopper's history is asked for again on every page they open)."""
        row = self._co_views.get(product_id)
        if row is None:
            cooc = self.behaviour.cooccurrence
            assert cooc is not None
            i = cooc.items.index(product_id)
            # a CSR row's indices are ascending already (CoOccurrence sorts them: ``count`` binary-searches them too)
            row = self._co_views.put(product_id, co_similarity_row(cooc, i, "view") if i is not None else
                                     (np.zeros(0, np.int64), np.zeros(0)))
        return row

    def _anchor_columns(self, anchor: ItemView, pids: list[str], items: list[ItemView],
                        stacked: dict[tuple[str, int], np.ndarray]) -> np.ndarray:
        """ANCHOR_COLUMNS of every candidate (n, len(ANCHOR_COLUMNS)): those already computed for this anchor and
        the same candidate view are reused, the others computed together and kept. A view changes only when the
        store is re-read (stock, prices, a new release), so what is kept is what would be computed again. When all
        are new, their vector matrices are left in ``stacked`` for the history columns."""
        with self._lock:
            side = self._anchors.get(anchor.product_id)
            if side is not None:
                self._anchors.move_to_end(anchor.product_id)
        if side is None or side.view is not anchor:
            side = self._anchor_side(anchor)
        kept = list(map(side.rows.get, pids))
        missing = [i for i, (k, item) in enumerate(zip(kept, items, strict=True)) if k is None or k[0] is not item]
        if missing:
            shared = stacked if len(missing) == len(items) else None
            block = self._anchor_block(side, [items[i] for i in missing], shared)
            new = [(pids[i], (items[i], row)) for i, row in zip(missing, block, strict=True)]
            for i, (_, pair) in zip(missing, new, strict=True):
                kept[i] = pair
            side.rows.put_many(new)
        return np.concatenate([k[1] for k in kept if k is not None]).reshape(len(pids), len(ANCHOR_COLUMNS))

    def _anchor_side(self, anchor: ItemView) -> _AnchorSide:
        """A fresh entry for the anchor (its session rows read once), replacing any older one."""
        cooc = self.behaviour.cooccurrence
        side = _AnchorSide(anchor, co_similarities(cooc, anchor.product_id, "view") if cooc else {},
                           co_counts(cooc, anchor.product_id, "purchase") if cooc else {}, BoundedDict(PAIRS_KEPT))
        with self._lock:
            self._anchors[anchor.product_id] = side
            self._anchors.move_to_end(anchor.product_id)
            while len(self._anchors) > ANCHORS_KEPT:
                self._anchors.popitem(last=False)
        return side

    @staticmethod
    def _anchor_block(side: _AnchorSide, items: list[ItemView], stacked: dict[tuple[str, int], np.ndarray] | None
                      ) -> np.ndarray:
        """ANCHOR_COLUMNS of ``items`` against the anchor, one vectorised pass."""
        anchor = side.view
        block = np.zeros((len(items), len(ANCHOR_COLUMNS)), dtype=np.float32)

        def put(name: str, values: Sequence[float] | np.ndarray) -> None:
            block[:, _ANCHOR_COLUMN[name]] = values

        for name, values in similarities(anchor, items, (), stacked).items():
            put(name, values)
        depth: dict[tuple[str, ...], float] = {}  # per distinct category path (candidates share a few)
        put("same_category", [depth[c] if (c := i.category) in depth else
                              depth.setdefault(c, shared_category_depth(anchor.category, c)) for i in items])
        put("same_variant", [float(anchor.variant_group == i.variant_group) for i in items])
        put("same_color", [float(bool(anchor.color) and anchor.color == i.color) for i in items])
        if anchor.attributes:  # else 0 for every candidate (the column is zeros already)
            put("shared_attributes", [shared_attributes(anchor.attributes, i.attributes) for i in items])
        put("price_distance", [price_distance(anchor.price, i.price) for i in items])
        put("cooccurrence", [side.co_view.get(i.product_id, 0.0) for i in items])
        put("copurchase", [math.log1p(side.co_purchase.get(i.product_id, 0.0)) for i in items])
        return block

    def _user_scores(self, query: RankQuery, rows: np.ndarray, column: np.ndarray) -> None:
        """The shopper's ALS preference for every trained candidate, into ``column`` (one product for all)."""
        model = self.behaviour.model
        u = model.users.index(query.user_id) if model is not None and query.user_id else None
        if model is None or u is None:
            return
        items = self._table.als[rows]
        trained = items >= 0
        if trained.any():
            column[trained] = model.item_factors[items[trained]] @ model.user_factors[u]


def sequence_scores(model: SequenceModel | None, history: Sequence[str], pids: Sequence[str]) -> list[float]:
    """The sequence model's next-item score of each product after ``history`` (most recent first); 0 without one."""
    ids = model.encode(list(reversed(history))) if model is not None else []
    if model is None or not ids:
        return [0.0] * len(pids)
    scores = model.score_batch([ids])[0]
    index = [model.items.index(p) for p in pids]
    return [float(scores[j]) if j is not None else 0.0 for j in index]


class _ProductTable:
    """Per-product columns that do not depend on the query, as arrays over one row per known product (the last row,
    for products it does not know, reads 0 / untrained): a request looks each candidate up once."""

    def __init__(self, behaviour: BehaviourContext, max_pop: float, max_recent: float) -> None:
        model, cooc = behaviour.model, behaviour.cooccurrence
        known = dict.fromkeys([*behaviour.popularity, *behaviour.recent_popularity, *(model.items if model else ()),
                               *(cooc.items.ids if cooc else ())])
        self.index = {pid: i for i, pid in enumerate(known)}
        n = len(self.index)
        self.popularity, self.recent = np.zeros(n + 1), np.zeros(n + 1)
        self.als = np.full(n + 1, -1, dtype=np.int64)
        self.cooc = np.full(n + 1, -1, dtype=np.int64)  # the product's co-occurrence index
        for pid, v in behaviour.popularity.items():
            self.popularity[self.index[pid]] = math.log1p(v) / max_pop
        for pid, v in behaviour.recent_popularity.items():
            self.recent[self.index[pid]] = math.log1p(v) / max_recent
        if model is not None:
            trained = np.flatnonzero(model.trained)
            self.als[[self.index[model.items.id(int(j))] for j in trained]] = trained
        if cooc is not None:
            self.cooc[[self.index[pid] for pid in cooc.items.ids]] = np.arange(len(cooc.items))

    def rows(self, pids: Sequence[str]) -> np.ndarray:
        """The table row of each product (the unknown row for one it does not know)."""
        return np.fromiter(map(self.index.get, pids, repeat(len(self.index))), dtype=np.int64, count=len(pids))


@dataclass
class _AnchorSide:
    """What a FeatureBuilder keeps of one anchor: its view (the entry is valid while it is the same object), its
    session rows, and the ANCHOR_COLUMNS row of each candidate seen with it (with the candidate's view)."""

    view: ItemView
    co_view: dict[str, float]
    co_purchase: dict[str, float]
    rows: BoundedDict[str, tuple[ItemView, np.ndarray]]


def co_counts(cooc: CoOccurrence, product_id: str, kind: str) -> dict[str, float]:
    """Sessions shared with ``product_id`` at ``kind`` or stronger, per co-occurring product."""
    i = cooc.items.index(product_id)
    if i is None:
        return {}
    js, counts = cooc.row(i, kind)
    ids = cooc.items.id
    return {ids(j): float(c) for j, c in zip(js.tolist(), counts.tolist(), strict=True)}


def co_similarities(cooc: CoOccurrence, product_id: str, kind: str) -> dict[str, float]:
    """Cosine of session incidence with ``product_id``: count / sqrt(sessions(a) · sessions(b))."""
    i = cooc.items.index(product_id)
    if i is None:
        return {}
    js, sims = co_similarity_row(cooc, i, kind)
    ids = cooc.items.id
    return {ids(j): sim for j, sim in zip(js.tolist(), sims.tolist(), strict=True)}


def co_similarity_row(cooc: CoOccurrence, i: int, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """``co_similarities`` of item index ``i`` as arrays: (co-occurring item indices, float64 similarities)."""
    js, counts = cooc.row(i, kind)
    spi = cooc.sessions_per_item
    return js, counts.astype(np.float64) / np.sqrt(float(spi[i]) * spi[js].astype(np.float64))

