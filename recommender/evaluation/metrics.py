"""Ranking metrics as pure functions (documented definitions; tested against hand-computed values).

Conventions: ``ranked`` is the recommended list, best first (only its first k items count for @k);
``relevant`` is the set of items that count as hits. Duplicates in ``ranked`` count once, at their
first position. An empty ``relevant`` set makes the task undefined: callers skip such tasks.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


def _dedup(ranked: Sequence[Hashable], k: int | None = None) -> list[Hashable]:
    seen: set[Hashable] = set()
    out = []
    for item in ranked:
        if item not in seen:
            seen.add(item)
            out.append(item)
        if k is not None and len(out) >= k:
            break
    return out


def hit_rate_at_k(ranked: Sequence[Hashable], relevant: Collection[Hashable], k: int) -> float:
    """1.0 if any relevant item is in the top k, else 0.0."""
    return float(any(item in relevant for item in _dedup(ranked, k)))


def recall_at_k(ranked: Sequence[Hashable], relevant: Collection[Hashable], k: int) -> float:
    """Share of the relevant items found in the top k: |top-k ∩ relevant| / |relevant|."""
    if not relevant:
        raise ValueError("recall is undefined without relevant items")
    return sum(1 for item in _dedup(ranked, k) if item in relevant) / len(relevant)


def ndcg_at_k(ranked: Sequence[Hashable], relevant: Collection[Hashable], k: int) -> float:
    """Binary-relevance NDCG@k: Σ 1/log2(rank+1) over hits in the top k, divided by the ideal sum
    (all min(|relevant|, k) relevant items at the top)."""
    if not relevant:
        raise ValueError("NDCG is undefined without relevant items")
    dcg = sum(1.0 / math.log2(rank + 1) for rank, item in enumerate(_dedup(ranked, k), start=1)
              if item in relevant)
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(len(relevant), k) + 1))
    return dcg / ideal


def reciprocal_rank(ranked: Sequence[Hashable], relevant: Collection[Hashable], k: int | None = None) -> float:
    """1 / rank of the first relevant item (within the top k when given), 0.0 when none is found.
    The mean of this over tasks is MRR."""
    for rank, item in enumerate(_dedup(ranked, k), start=1):
        if item in relevant:
            return 1.0 / rank
    return 0.0


def catalog_coverage(lists: Sequence[Sequence[Hashable]], catalog_size: int, k: int) -> float:
    """Share of the catalog that appears in at least one top-k list."""
    if catalog_size <= 0:
        raise ValueError("catalog_size must be positive")
    shown = {item for ranked in lists for item in _dedup(ranked, k)}
    return len(shown) / catalog_size


def intra_list_diversity(vectors: np.ndarray) -> float:
    """Mean pairwise cosine distance (1 − cos) between the items of one list (rows: unit vectors).
    0 for identical items, 1 for orthogonal ones; lists of fewer than two items give 0."""
    v = np.asarray(vectors, dtype=np.float64)
    n = len(v)
    if n < 2:
        return 0.0
    sims = v @ v.T
    off_diagonal = (sims.sum() - np.trace(sims)) / (n * (n - 1))
    return float(1.0 - off_diagonal)


def novelty(ranked: Sequence[Hashable], popularity: Mapping[Any, int], n_users: int, k: int) -> float:
    """Mean self-information −log2(p(i)) of the top-k items, p(i) = users who interacted with i / all
    users (an item nobody touched counts as seen by one user, so the value stays finite)."""
    if n_users <= 0:
        raise ValueError("n_users must be positive")
    items = _dedup(ranked, k)
    if not items:
        return 0.0
    return sum(-math.log2(max(popularity.get(i, 0), 1) / n_users) for i in items) / len(items)


# Cross-modal retrieval: query i's relevant item is candidate i (its own product).

KS = (1, 10)


@dataclass(frozen=True)
class RetrievalFigures:
    """Mean Recall@k (k in ``KS``) and MRR of each query's own item among ``n`` candidates."""

    n: int
    recall: dict[int, float]
    mrr: float

    def as_dict(self) -> dict[str, float]:
        """Stable keys: ``recall@1``, ``recall@10``, ``mrr``."""
        return {**{f"recall@{k}": round(v, 6) for k, v in self.recall.items()}, "mrr": round(self.mrr, 6)}


def chance(n: int, ks: Sequence[int] = KS) -> dict[str, float]:
    """What a random ranking scores on average: Recall@k = k/n, MRR = H_n / n."""
    if n <= 0:
        raise ValueError("chance is undefined for an empty candidate set")
    harmonic = sum(1.0 / r for r in range(1, n + 1))
    return {**{f"recall@{k}": round(min(1.0, k / n), 6) for k in ks}, "mrr": round(harmonic / n, 6)}


def ranked_rows(queries: np.ndarray, candidates: np.ndarray, penalty: np.ndarray | None = None) -> np.ndarray:
    """For each query row, candidate row indices by descending dot product minus the candidate's ``penalty``
    (the hubness correction search applies to text→image scores; None: none). Ties: lower index first."""
    scores = np.asarray(queries, dtype=np.float32) @ np.asarray(candidates, dtype=np.float32).T
    if penalty is not None:
        scores = scores - np.asarray(penalty, dtype=np.float32)[None, :]
    return np.argsort(-scores, axis=1, kind="stable")


def own_item_figures(queries: np.ndarray, candidates: np.ndarray, ks: Sequence[int] = KS,
                     penalty: np.ndarray | None = None) -> RetrievalFigures:
    """Query ``i``'s relevant item is candidate ``i`` (its own product): mean Recall@k and MRR, ranking by
    dot product minus each candidate's ``penalty`` when given."""
    n = len(queries)
    if n == 0 or len(candidates) != n:
        raise ValueError(f"need as many queries as candidates (got {n} and {len(candidates)}), at least one")
    order = ranked_rows(queries, candidates, penalty)
    recall = {k: 0.0 for k in ks}
    rr = 0.0
    for i, row in enumerate(order):
        position = int(np.flatnonzero(row == i)[0])
        ranked = row[: max(position + 1, max(ks))].tolist()
        for k in ks:
            recall[k] += recall_at_k(ranked, {i}, k)
        rr += reciprocal_rank(ranked, {i})
    return RetrievalFigures(n, {k: v / n for k, v in recall.items()}, rr / n)


# Next-item ranking over the whole catalogue: one target per user, scores as a (users, items) matrix.

def target_ranks(scores: np.ndarray, targets: np.ndarray, exclude: np.ndarray | None = None) -> np.ndarray:
    """0-based rank of each row's target among its non-excluded items: the number of other allowed items
    scoring at least as high (ties count against the target, so a constant scorer earns nothing).
    ``exclude`` is a boolean mask of the same shape (e.g. the user's history); the target is never excluded."""
    s = np.array(scores, dtype=np.float64, copy=True)
    rows = np.arange(len(s))
    t = np.asarray(targets, dtype=np.int64)
    if exclude is not None:
        s[np.asarray(exclude, dtype=bool)] = -np.inf
    target_score = np.asarray(scores, dtype=np.float64)[rows, t]
    s[rows, t] = -np.inf
    return (s >= target_score[:, None]).sum(axis=1)


def hit_rate_from_ranks(ranks: np.ndarray, k: int) -> float:
    """HR@k: share of targets ranked in the top k (rank < k)."""
    r = np.asarray(ranks)
    return float((r < k).mean()) if len(r) else 0.0


def ndcg_from_ranks(ranks: np.ndarray, k: int) -> float:
    """NDCG@k with one relevant item: mean of 1/log2(rank + 2) over targets in the top k (0 otherwise)."""
    r = np.asarray(ranks, dtype=np.float64)
    if not len(r):
        return 0.0
    return float(np.where(r < k, 1.0 / np.log2(r + 2.0), 0.0).mean())
