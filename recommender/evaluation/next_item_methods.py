"""The "for you" path's methods as batch scorers over all items, for the next-item protocol.

One behaviour fit (``recommender.behaviour.fit``: ALS, co-occurrence under the session rule, popularity) gives
``popularity``, ``als`` (the shopper's ALS preference, the ``als_user`` source), ``session`` (co-occurrence with
the shopper's recent items, the ``session`` source) and ``for_you``: the path's configured fusion of those signals
(plus ``sasrec`` when a sequence model is given) over the union of every source's candidates, each signal
standardised over that union as the fusion ranker does. Text and image signals are left out: these benchmarks
have no product text or images.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np
from scipy import sparse

from recommender.behaviour.fit import Behaviour
from recommender.config import CollaborativeSettings
from recommender.domain import RECENT_HISTORY
from recommender.evaluation.next_item import Scorer
from recommender.events.interactions import IdMap
from recommender.ranking.fusion import DEFAULT_WEIGHTS
from recommender.sequence.store import SequenceModel

SEQUENCE_WEIGHT = 1.0  # the fused "for you" weight of the sequence model's signal
PLAIN_ALS = CollaborativeSettings(factors=128, regularization=0.01, alpha=0.0, half_life_days=0.0)


def plain_als_settings(threads: int = 0) -> CollaborativeSettings:
    """``implicit``'s AlternatingLeastSquares(factors=128) on the binary matrix (confidence 1, no decay): the
    baseline the tuned defaults must never lose to."""
    return replace(PLAIN_ALS, threads=threads)


def _columns(source: IdMap, target: IdMap) -> tuple[np.ndarray, np.ndarray]:
    """(positions in ``source``, positions in ``target``) of the ids both maps hold."""
    pairs = [(i, target.index(pid)) for i, pid in enumerate(source.ids)]
    kept = [(i, j) for i, j in pairs if j is not None]
    return np.array([i for i, _ in kept], dtype=np.int64), np.array([j for _, j in kept], dtype=np.int64)


def popularity_scorer(behaviour: Behaviour, items: IdMap) -> Scorer:
    """Distinct training users per item, the same for everyone."""
    pop = np.array([behaviour.popularity.get(pid, 0.0) for pid in items.ids], dtype=np.float32)
    return lambda rows, inputs: np.broadcast_to(pop, (len(inputs), len(pop)))


def als_scorer(behaviour: Behaviour, items: IdMap, users: Sequence[str]) -> Scorer:
    """The shopper's ALS preference ``user · item`` (0: untrained user or item); ``users[row]`` names a shopper."""
    model = behaviour.model
    src, dst = _columns(model.items, items) if model else (np.zeros(0, np.int64),) * 2
    factors = np.zeros((len(items), model.item_factors.shape[1] if model else 1), dtype=np.float32)
    if model is not None:
        factors[dst] = model.item_factors[src] * model.trained[src, None]

    def score(rows: Sequence[int], inputs: Sequence[Sequence[int]]) -> np.ndarray:
        u = np.zeros((len(rows), factors.shape[1]), dtype=np.float32)
        for i, row in enumerate(rows):
            idx = model.users.index(users[row]) if model is not None else None
            if idx is not None and model is not None:
                u[i] = model.user_factors[idx]
        return u @ factors.T

    return score


def session_scorer(behaviour: Behaviour, items: IdMap, recent: int = RECENT_HISTORY) -> Scorer:
    """Summed co-occurrence cosine with the shopper's ``recent`` last items (the ``session`` source)."""
    cooc = behaviour.cooccurrence
    counts = cooc.counts["view"].tocoo()
    spi = np.asarray(cooc.sessions_per_item, dtype=np.float64)
    sim = counts.data / np.sqrt(spi[counts.row] * spi[counts.col])
    remap = np.full(len(cooc.items), -1, dtype=np.int64)
    src, dst = _columns(cooc.items, items)
    remap[src] = dst
    keep = (remap[counts.row] >= 0) & (remap[counts.col] >= 0)
    matrix = sparse.csr_matrix((sim[keep], (remap[counts.row[keep]], remap[counts.col[keep]])),
                               shape=(len(items), len(items)), dtype=np.float32)

    def score(batch: Sequence[int], inputs: Sequence[Sequence[int]]) -> np.ndarray:
        rows = [i for i, seq in enumerate(inputs) for _ in seq[-recent:]]
        cols = [j for seq in inputs for j in seq[-recent:]]
        h = sparse.csr_matrix((np.ones(len(cols), np.float32), (rows, cols)), shape=(len(inputs), len(items)))
        return np.asarray((h @ matrix).todense())

    return score


def sequence_scorer(model: SequenceModel, items: IdMap) -> Scorer:
    """SASRec's next-item scores (items it never saw score −inf)."""
    src, dst = _columns(model.items, items)
    to_model = np.zeros(len(items), dtype=np.int64)
    to_model[dst] = src + 1

    def score(rows: Sequence[int], inputs: Sequence[Sequence[int]]) -> np.ndarray:
        raw = model.score_batch([[int(to_model[j]) for j in seq if to_model[j]] for seq in inputs])
        out = np.full((len(inputs), len(items)), -np.inf, dtype=np.float32)
        out[:, dst] = raw[:, src]
        return out

    return score


def fused_scorer(signals: Mapping[str, Scorer], weights: Mapping[str, float], per_source: int = 50) -> Scorer:
    """Σ weight · standardised signal over the union of each signal's top ``per_source`` items; others −inf."""

    def score(rows: Sequence[int], inputs: Sequence[Sequence[int]]) -> np.ndarray:
        values = {name: np.nan_to_num(np.asarray(s(rows, inputs), dtype=np.float64), neginf=np.nan) for name, s in
                  signals.items()}
        first = next(iter(values.values()))
        pool = np.zeros((len(inputs), first.shape[1]), dtype=bool)
        depth = min(per_source, pool.shape[1])
        for v in values.values():
            top = np.argpartition(-np.nan_to_num(v, nan=-np.inf), depth - 1, axis=1)[:, :depth]
            np.put_along_axis(pool, top, True, axis=1)
        total = np.zeros(pool.shape)
        for name, v in values.items():
            v = np.where(np.isnan(v), np.nanmin(np.where(pool, v, np.nan), axis=1, keepdims=True), v)
            masked = np.where(pool, v, np.nan)
            z = (v - np.nanmean(masked, axis=1, keepdims=True)) / np.maximum(np.nanstd(masked, axis=1, keepdims=True),
                                                                              1e-9)
            total += weights[name] * z
        return np.where(pool, total, -np.inf)

    return score


def for_you_scorers(behaviour: Behaviour, items: IdMap, users: Sequence[str], sequence: SequenceModel | None = None
                    ) -> dict[str, Scorer]:
    """popularity, als, session, (sasrec) and their fusion ``for_you``; ``users`` as for ``als_scorer``."""
    out = {"popularity": popularity_scorer(behaviour, items), "session": session_scorer(behaviour, items)}
    if behaviour.model is not None:
        out["als"] = als_scorer(behaviour, items, users)
    if sequence is not None:
        out["sasrec"] = sequence_scorer(sequence, items)
    weights = {"popularity": DEFAULT_WEIGHTS["popularity"], "session": DEFAULT_WEIGHTS["session"],
               "als": DEFAULT_WEIGHTS["als_user"], "sasrec": SEQUENCE_WEIGHT}
    out["for_you"] = fused_scorer(dict(out), weights)
    return out
