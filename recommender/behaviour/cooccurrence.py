"""Item–item co-occurrence within sessions: candidates ("bought together") and the facts explanations cite.

Per session each item counts once, at the strongest event it reached there (view < cart < purchase).
Kind ``view`` counts sessions where both items were at least viewed (i.e. any session holding both),
``cart`` sessions where both were at least carted, ``purchase`` sessions where both were bought; so
count(view) ≥ count(cart) ≥ count(purchase). Stored as symmetric sparse matrices (npz, no pickle).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import sparse

from recommender.caching import BoundedDict
from recommender.events.interactions import IdMap
from recommender.events.log import EVENT_LEVEL, EVENT_TYPES

SIMILAR_KEPT = 5_000  # ``similar`` answers a model keeps (about 50 pairs each)
SHARED_ROWS_KEPT = 512  # anchors' count rows ``shared_sessions`` keeps as dicts (a page asks ~10 items of one anchor)
SHARED_ROW_MAX = 512  # a longer row is binary-searched in place instead (its dict would cost more than it saves)
KINDS = EVENT_TYPES  # ("view", "cart", "purchase"): co-viewed, co-carted, co-purchased


@dataclass(frozen=True)
class CoItem:
    """A product that co-occurs with the anchor: the strongest kind shared, its count, and a similarity."""

    product_id: str
    count: int
    kind: str
    similarity: float
    sessions: int  # sessions holding both (kind ``view``)


@dataclass(frozen=True)
class CoOccurrence:
    """Symmetric item×item session counts per kind, plus per-item session counts (popularity)."""

    items: IdMap
    counts: Mapping[str, sparse.csr_matrix]
    sessions_per_item: np.ndarray  # sessions holding each item (any kind)
    sessions: int
    # ``similar``'s answers, kept: the same history products are asked for on request after request
    _similar: BoundedDict[tuple[str, int, str], list[tuple[str, float]]] = field(
        default_factory=lambda: BoundedDict(SIMILAR_KEPT), init=False, repr=False, compare=False)
    _rows: BoundedDict[tuple[int, str], dict[int, int] | None] = field(
        default_factory=lambda: BoundedDict(SHARED_ROWS_KEPT), init=False, repr=False, compare=False)

    def count(self, a: str, b: str, kind: str = "view") -> int:
        """Sessions in which ``a`` and ``b`` co-occurred at least at ``kind``."""
        i, j = self.items.index(a), self.items.index(b)
        return 0 if i is None or j is None else self._count_at(i, j, kind)

    def _count_at(self, i: int, j: int, kind: str) -> int:
        # straight from the CSR arrays: scipy's element indexing costs ~35 µs, this ~6 µs (measured; hot API path)
        m = self.counts[kind]
        start, end = m.indptr[i], m.indptr[i + 1]
        pos = start + int(np.searchsorted(m.indices[start:end], j))
        return int(m.data[pos]) if pos < end and m.indices[pos] == j else 0

    def shared_sessions(self, a: str, b: str) -> dict[str, float]:
        """Sessions ``a`` and ``b`` share per kind an explanation states (``view``, ``purchase``): ``count``'s, read
        from ``a``'s row kept as a dict (a page asks this of its anchor and each of its ~10 items)."""
        i, j = self.items.index(a), self.items.index(b)
        if i is None or j is None:
            return {"view": 0.0, "purchase": 0.0}
        out = {}
        for kind in ("view", "purchase"):
            key = (i, kind)
            row = self._rows.get(key)
            if row is None and key not in self._rows:
                js, counts = self.row(i, kind)
                row = self._rows.put(key, dict(zip(js.tolist(), counts.tolist(), strict=True))
                                     if len(js) <= SHARED_ROW_MAX else None)
            out[kind] = float(int(row.get(j, 0)) if row is not None else self._count_at(i, j, kind))
        return out

    def co_occurring(self, product_id: str, n: int = 10, kind: str = "view") -> list[CoItem]:
        """The ``n`` products that co-occur with ``product_id`` at ``kind`` or stronger, most similar first.

        Similarity is the cosine of session incidence, ``count / sqrt(sessions(a) · sessions(b))``,
        so a bestseller seen alongside everything does not top every list.
        """
        i = self.items.index(product_id)
        top = self._top(i, n, kind) if i is not None and n > 0 else None
        if i is None or top is None:
            return []
        js, sim = top
        # one row per kind (not one element lookup per item and kind: scipy indexing is slow per element)
        rows = {k: dict(zip(r[0].tolist(), r[1].tolist(), strict=True)) for k in KINDS for r in (self.row(i, k),)}
        return [self._item(rows, int(j), float(x)) for j, x in zip(js, sim, strict=True)]

    def similar(self, product_id: str, n: int = 10, kind: str = "view") -> list[tuple[str, float]]:
        """``co_occurring``'s products and similarities (same order, same rounding) without the per-kind counts:
        what the candidate sources need, on every request. The list is shared: callers must not change it."""
        key = (product_id, n, kind)
        kept = self._similar.get(key)
        if kept is not None:
            return kept
        i = self.items.index(product_id)
        top = self._top(i, n, kind) if i is not None and n > 0 else None
        ids = self.items.id
        out = [] if top is None else [(ids(int(j)), round(float(x), 6)) for j, x in zip(top[0], top[1], strict=True)]
        return self._similar.put(key, out)

    def row(self, i: int, kind: str) -> tuple[np.ndarray, np.ndarray]:
        """Item ``i``'s co-occurring item indices and counts at ``kind``: slices of the CSR arrays (scipy's
        ``getrow`` builds a new matrix per call, ~0.1 ms; this is what the request path reads)."""
        m = self.counts[kind]
        start, end = m.indptr[i], m.indptr[i + 1]
        return m.indices[start:end], m.data[start:end]

    def _top(self, i: int, n: int, kind: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(item indices, similarities) of item ``i``'s ``n`` most similar co-occurring items; None when none."""
        js, raw = self.row(i, kind)
        if len(js) == 0:
            return None
        counts = raw.astype(np.float64)
        sim = counts / np.sqrt(self.sessions_per_item[i] * self.sessions_per_item[js])
        order = np.lexsort((js, -counts, -sim))[:n]  # similarity, then count, then index for ties
        return js[order], sim[order]

    def _item(self, rows: Mapping[str, Mapping[int, float]], j: int, similarity: float) -> CoItem:
        strongest, count = "view", 0
        for kind in KINDS:
            c = int(rows[kind].get(j, 0))
            if c > 0:
                strongest, count = kind, c
        return CoItem(self.items.id(j), count, strongest, round(similarity, 6), int(rows["view"].get(j, 0)))

    # ----------------------------------------------------------------- artifacts
    def save(self, folder: Path) -> None:
        """Write ``cooccurrence.npz`` (arrays only) and ``cooccurrence_items.json`` into ``folder``."""
        arrays: dict[str, np.ndarray] = {"sessions_per_item": self.sessions_per_item}
        for kind, m in self.counts.items():
            arrays |= {f"{kind}_data": m.data, f"{kind}_indices": m.indices, f"{kind}_indptr": m.indptr}
        np.savez_compressed(folder / "cooccurrence.npz", allow_pickle=False, **arrays)
        meta = {"items": list(self.items.ids), "sessions": self.sessions, "kinds": list(self.counts)}
        (folder / "cooccurrence_items.json").write_text(json.dumps(meta), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> CoOccurrence:
        """Read what ``save`` wrote (``allow_pickle=False``)."""
        meta = json.loads((folder / "cooccurrence_items.json").read_text(encoding="utf-8"))
        items = IdMap(meta["items"])
        n = len(items)
        with np.load(folder / "cooccurrence.npz", allow_pickle=False) as z:
            counts = {k: sparse.csr_matrix((z[f"{k}_data"], z[f"{k}_indices"], z[f"{k}_indptr"]), shape=(n, n))
                      for k in meta["kinds"]}
            per_item = z["sessions_per_item"]
        for m in counts.values():
            m.sort_indices()  # `count` binary-searches each row
        return cls(items, counts, per_item, int(meta["sessions"]))


def build_cooccurrence(sessions: Iterable[tuple[str, Sequence[tuple[str, str]]]], items: IdMap | None = None,
                       max_session_items: int = 50) -> CoOccurrence:
    """Count co-occurrences from ``(session_id, [(product_id, event), ...])`` in time order.

    ``items`` fixes the item id map (products outside it are ignored); else it grows as products appear.
    A session longer than ``max_session_items`` distinct products keeps its last ones (pairs grow as n²).
    """
    fixed = items is not None
    ids = items if items is not None else IdMap()
    rows: list[int] = []
    cols: list[int] = []
    levels: list[int] = []
    n_sessions = 0
    for _, events in sessions:
        strongest = _strongest(events, ids, fixed, max_session_items)
        if not strongest:
            continue
        rows.extend([n_sessions] * len(strongest))
        cols.extend(strongest)
        levels.extend(strongest.values())
        n_sessions += 1
    return _count(ids, np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64),
                  np.asarray(levels, dtype=np.int8), n_sessions)


def _strongest(events: Sequence[tuple[str, str]], ids: IdMap, fixed: bool, cap: int) -> dict[int, int]:
    """Item index → strongest event level in one session, keeping the ``cap`` most recently seen items."""
    best: dict[int, int] = {}
    for product, kind in events:
        index = ids.index(product) if fixed else ids.add(product)
        if index is None:
            continue
        level = max(best.pop(index, 0), EVENT_LEVEL[kind])
        best[index] = level  # re-inserted: dict order = order of last appearance
    if len(best) > cap:
        best = dict(list(best.items())[-cap:])
    return best


def _count(ids: IdMap, rows: np.ndarray, cols: np.ndarray, levels: np.ndarray, n_sessions: int) -> CoOccurrence:
    n = len(ids)
    counts: dict[str, sparse.csr_matrix] = {}
    per_item = np.zeros(n, dtype=np.int64)
    for kind, level in EVENT_LEVEL.items():
        mask = levels >= level
        incidence = sparse.csr_matrix((np.ones(int(mask.sum()), dtype=np.int32), (rows[mask], cols[mask])),
                                      shape=(n_sessions, n))
        co = (incidence.T @ incidence).tocsr()
        if kind == "view":
            per_item = co.diagonal().astype(np.int64)
        co.setdiag(0)
        co.eliminate_zeros()
        co.sort_indices()
        counts[kind] = co.astype(np.int32)
    return CoOccurrence(ids, counts, per_item, n_sessions)
