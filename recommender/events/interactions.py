"""Events → the user×item interaction matrix the collaborative model learns from, with id maps at the edge.

External ids (strings) become dense ints here and only here (``IdMap``); models work on ints and
translate back through the same maps. Each (user, item) cell sums its events' weights, each decayed
by age: ``weight(event) · 0.5^(age_days / half_life_days)``, age measured from ``reference``: the clock of the job
(the refresh's ``--now`` or wall time; a time split's cut), never the newest event, so one event dated in the future
cannot decay all the others. Events after the reference count as of the reference (age 0).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from scipy import sparse

from recommender.config import CollaborativeSettings
from recommender.events.log import Event, to_us

_US_PER_DAY = 86_400 * 1_000_000


class IdMap:
    """External string ids ↔ dense ints 0..n-1, in first-seen (or given) order."""

    def __init__(self, ids: Iterable[str] = ()) -> None:
        self._ids: list[str] = []
        self._index: dict[str, int] = {}
        for external in ids:
            self.add(external)

    def add(self, external: str) -> int:
        """The int of an id, assigning the next one when it is new."""
        index = self._index.get(external)
        if index is None:
            index = self._index[external] = len(self._ids)
            self._ids.append(external)
        return index

    def index(self, external: str) -> int | None:
        """The int of a known id, else None."""
        return self._index.get(external)

    def id(self, index: int) -> str:
        """The external id of an int."""
        return self._ids[index]

    @property
    def ids(self) -> Sequence[str]:
        """All external ids, position = int."""
        return tuple(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, external: object) -> bool:
        return external in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdMap) and self._ids == other._ids

    def __hash__(self) -> int:
        return hash(tuple(self._ids))

    def __repr__(self) -> str:
        return f"IdMap({len(self)} ids)"


def event_weights(settings: CollaborativeSettings) -> dict[str, float]:
    """Weight of each event type (view < cart < purchase by default)."""
    return {"view": settings.view_weight, "cart": settings.cart_weight, "purchase": settings.purchase_weight}


def decay(age_days: np.ndarray | float, half_life_days: float) -> np.ndarray:
    """``0.5^(age / half_life)``; no decay when ``half_life_days <= 0``; future events count fully."""
    age = np.maximum(np.asarray(age_days, dtype=np.float64), 0.0)
    if half_life_days <= 0:
        return np.ones_like(age)
    return np.asarray(np.power(0.5, age / half_life_days))


@dataclass(frozen=True)
class Interactions:
    """The weighted user×item matrix (CSR, float32) with its id maps and how it was made."""

    matrix: sparse.csr_matrix
    users: IdMap
    items: IdMap
    events: int
    reference_us: int  # decay reference time, microseconds since the epoch

    @property
    def data_hash(self) -> str:
        """Content hash of the matrix and its ids: equal hashes mean the same training data."""
        h = hashlib.sha256()
        m = self.matrix
        for arr in (m.indptr, m.indices, m.data):
            h.update(np.ascontiguousarray(arr).tobytes())
        for ids in (self.users.ids, self.items.ids):
            h.update("\x1f".join(ids).encode("utf-8"))
            h.update(b"\x1e")
        return h.hexdigest()[:16]


def build_interactions(events: Iterable[Event], settings: CollaborativeSettings, *,
                       reference: datetime) -> Interactions:
    """Sum decayed event weights per (user, item); users below ``min_user_items`` are left out."""
    rows = ((e.user_id, e.product_id, e.event, e.ts_us) for e in events)
    return interactions_from_rows(rows, settings, reference=reference)


def interactions_from_rows(events: Iterable[tuple[str, str, str, int]], settings: CollaborativeSettings, *,
                           reference: datetime) -> Interactions:
    """``build_interactions`` on bare ``(user_id, product_id, event, ts_us)`` rows (``EventLog.rows``)."""
    weights = event_weights(settings)
    users, items = IdMap(), IdMap()
    rows: list[int] = []
    cols: list[int] = []
    kinds: list[float] = []
    stamps: list[int] = []
    for user, product, kind, ts_us in events:
        rows.append(users.add(user))
        cols.append(items.add(product))
        kinds.append(weights[kind])
        stamps.append(ts_us)
    ts = np.asarray(stamps, dtype=np.int64)
    ref = to_us(reference)
    values = np.asarray(kinds) * decay((ref - ts) / _US_PER_DAY, settings.half_life_days)
    coo = sparse.coo_matrix((values, (rows, cols)), shape=(len(users), len(items)))
    matrix = sparse.csr_matrix(coo, dtype=np.float64)  # duplicates are summed here
    matrix.sum_duplicates()
    matrix, users = _drop_light_users(matrix, users, settings.min_user_items)
    matrix.sort_indices()
    return Interactions(matrix.astype(np.float32), users, items, len(stamps), ref)


def _drop_light_users(matrix: sparse.csr_matrix, users: IdMap, min_items: int
                      ) -> tuple[sparse.csr_matrix, IdMap]:
    if min_items <= 1:
        return matrix, users
    keep = np.flatnonzero(np.diff(matrix.indptr) >= min_items)
    return matrix[keep], IdMap(users.id(int(i)) for i in keep)


def user_items(interactions: Interactions) -> Mapping[str, dict[str, float]]:
    """The matrix as ``{user: {item: value}}`` (tests, explanations; small data only)."""
    m, out = interactions.matrix, {}
    for u, user in enumerate(interactions.users):
        start, end = m.indptr[u], m.indptr[u + 1]
        out[user] = {interactions.items.id(int(i)): float(v) for i, v in zip(m.indices[start:end],
                                                                              m.data[start:end], strict=True)}
    return out
