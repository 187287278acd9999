"""Fusion: one linear model over standardised signals, business rules, and diversity (MMR). Pure functions.

Configured weights and learned weights are the same kind of object — ``score = b + Σ wᵢ·(xᵢ − μᵢ)/σᵢ`` —
so every ranked item can show exactly how much each signal contributed. Standardising with statistics
measured on real candidates makes the signals comparable across models (a cosine from MiniLM and one from
an image tower live on different scales).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from recommender.domain import ItemView, ProductFilter, RankQuery
from recommender.errors import RecommenderError
from recommender.ranking.features import FEATURES

MMR_POOL = 100  # the best candidates MMR diversifies among
DEFAULT_WEIGHTS: Mapping[str, float] = {
    "text": 1.0, "image": 0.5, "behavior": 0.5, "cooccurrence": 1.0, "copurchase": 0.5,
    "history_text": 0.3, "session": 0.5, "als_user": 0.3, "popularity": 0.2, "same_category": 0.3,
    "sasrec": 1.0,
}


class RankingModel(Protocol):
    """What the ranker needs of a model: an order, and per-feature contributions for the items it shows.

    Contract: ``predict(rows)`` gives one score per feature row (larger is better); ``contributions(rows)`` one
    value per row and feature whose row sum is the score minus a constant (the intercept or the trees' bias).
    Implemented by the linear ``FusionModel`` and the learning-to-rank ``ltr.TreeRanker``.
    """

    @property
    def kind(self) -> str: ...

    @property
    def features(self) -> tuple[str, ...]: ...

    def predict(self, rows: np.ndarray) -> np.ndarray: ...

    def contributions(self, rows: np.ndarray) -> np.ndarray: ...

    def score(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...

    def to_json(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class FusionModel:
    """A linear scorer over FEATURES; ``kind`` is "configured" or "learned"."""

    features: tuple[str, ...]
    weights: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    intercept: float = 0.0
    kind: str = "configured"
    meta: Mapping[str, Any] = field(default_factory=dict)

    def score(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scores (n,) and per-feature contributions (n, d) of feature rows (n, d)."""
        z = (np.asarray(rows, dtype=np.float64) - self.mean) / self.scale
        contributions = z * self.weights
        return contributions.sum(axis=1) + self.intercept, contributions

    def predict(self, rows: np.ndarray) -> np.ndarray:
        """Scores (n,) of feature rows (n, d)."""
        return self.score(rows)[0]

    def contributions(self, rows: np.ndarray) -> np.ndarray:
        """Per-feature contributions (n, d); a row sums to its score minus the intercept."""
        return self.score(rows)[1]

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict (no pickle anywhere)."""
        return {"features": list(self.features), "weights": self.weights.tolist(), "mean": self.mean.tolist(),
                "scale": self.scale.tolist(), "intercept": self.intercept, "kind": self.kind, "meta": dict(self.meta)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FusionModel:
        """Inverse of ``to_json``; rejects a model whose features differ from this code's."""
        if tuple(data["features"]) != FEATURES:
            raise RecommenderError("fusion model was trained on other features; retrain it")
        return cls(tuple(data["features"]), np.asarray(data["weights"], dtype=np.float64),
                   np.asarray(data["mean"], dtype=np.float64), np.asarray(data["scale"], dtype=np.float64),
                   float(data["intercept"]), str(data["kind"]), dict(data.get("meta", {})))

    def save(self, path: Path) -> None:
        """Write as JSON (atomically: write aside, then rename)."""
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> FusionModel:
        """Read a saved model."""
        try:
            return cls.from_json(json.loads(path.read_text()))
        except (OSError, ValueError, KeyError) as exc:
            raise RecommenderError(f"cannot read fusion model {path}: {exc}") from exc


def feature_stats(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and scale (std, 1 where a feature is constant) of feature rows."""
    rows = np.asarray(rows, dtype=np.float64)
    std = rows.std(axis=0)
    return rows.mean(axis=0), np.where(std > 1e-9, std, 1.0)


def configured_model(weights: Mapping[str, float], rows: np.ndarray | None = None) -> FusionModel:
    """A fusion model from configured weights; ``rows`` (candidate features) supply the standardisation."""
    unknown = set(weights) - set(FEATURES)
    if unknown:
        raise RecommenderError(f"unknown fusion weight(s): {', '.join(sorted(unknown))}")
    w = np.array([weights.get(f, 0.0) for f in FEATURES], dtype=np.float64)
    if rows is None or len(rows) == 0:
        mean, scale = np.zeros(len(FEATURES)), np.ones(len(FEATURES))
    else:
        mean, scale = feature_stats(rows)
    return FusionModel(FEATURES, w, mean, scale, 0.0, "configured")


def learn_model(rows: np.ndarray, labels: np.ndarray, c: float = 1.0, seed: int = 0) -> FusionModel:
    """Logistic regression on standardised features: P(candidate is relevant | signals)."""
    from sklearn.linear_model import LogisticRegression

    if labels.sum() == 0 or labels.sum() == len(labels):
        raise RecommenderError("learning fusion weights needs both relevant and irrelevant candidates")
    mean, scale = feature_stats(rows)
    z = (np.asarray(rows, dtype=np.float64) - mean) / scale
    clf = LogisticRegression(C=c, max_iter=2000, class_weight="balanced", random_state=seed)
    clf.fit(z, labels)
    meta = {"train_rows": len(labels), "positives": int(labels.sum())}
    return FusionModel(FEATURES, clf.coef_[0].astype(np.float64), mean, scale, float(clf.intercept_[0]),
                       "learned", meta)


@dataclass(frozen=True)
class Rules:
    """Business rules applied after scoring."""

    exclude_out_of_stock: bool = True
    exclude_purchased: bool = True
    max_per_variant_group: int = 0  # 0 = no cap
    diversity: float = 0.0  # 0 = pure relevance … 1 = pure novelty w.r.t. items already chosen (MMR)
    diversity_vector: str = "image"


def allowed_ids(ids: Iterable[str], views: Mapping[str, ItemView], query: RankQuery, rules: Rules) -> list[str]:
    """The ids that have a view and may be shown at all for this query (not the anchor, excluded, out of stock or
    purchased when the rules bar those, and matching the query's filters), in order: one pass with the barred ids
    gathered once (it runs for each of a request's ~200 candidates)."""
    barred = {query.anchor_id, *query.exclude, *(query.purchased if rules.exclude_purchased else ())}
    stock, f = rules.exclude_out_of_stock, query.filters
    out = []
    for pid in ids:
        item = views.get(pid)
        if item is None or item.product_id in barred or (stock and not item.in_stock):
            continue
        if f is None or matches(item, f):
            out.append(pid)
    return out


def matches(item: ItemView, f: ProductFilter) -> bool:
    """The same filter semantics the store applies, for candidates that did not come from a filtered query."""
    if f.category and tuple(item.category[: len(f.category)]) != tuple(f.category):
        return False
    if f.in_stock is not None and item.in_stock != f.in_stock:
        return False
    if (f.price_min is not None or f.price_max is not None) and item.price is None:
        return False
    if f.price_min is not None and item.price is not None and item.price < f.price_min:
        return False
    return not (f.price_max is not None and item.price is not None and item.price > f.price_max)


def select(order: Sequence[str], scores: Mapping[str, float], items: Mapping[str, ItemView], k: int,
           rules: Rules) -> list[str]:
    """Top k of ``order`` after the variant cap and MMR diversity (order must be best-first)."""
    # only as many as are read: the top k, or MMR's pool
    limit = len(order) if k < 1 else k if rules.diversity <= 0 else MMR_POOL
    capped = _cap_variants(order, items, rules.max_per_variant_group, limit)
    if rules.diversity <= 0:
        return capped[:k]
    return mmr(capped, scores, items, k, rules.diversity, rules.diversity_vector)


def _cap_variants(order: Sequence[str], items: Mapping[str, ItemView], cap: int, limit: int) -> list[str]:
    """The first ``limit`` of ``order`` that keep at most ``cap`` per variant group (0 = no cap)."""
    if cap <= 0:
        return list(order[:limit])
    seen: dict[str, int] = {}
    out: list[str] = []
    for pid in order:
        group = items[pid].variant_group
        shown = seen.get(group, 0)
        if shown < cap:
            seen[group] = shown + 1
            out.append(pid)
            if len(out) >= limit:
                break
    return out


def mmr(order: Sequence[str], scores: Mapping[str, float], items: Mapping[str, ItemView], k: int,
        diversity: float, vector: str = "image", pool: int = MMR_POOL) -> list[str]:
    """Maximal marginal relevance: repeatedly take argmax (1−λ)·rel − λ·max cos(item, chosen), λ = diversity.
    Relevance is min-max scaled over the pool so λ means the same for every model."""
    cand = list(order[:pool])
    if not cand:
        return []
    rel = np.array([scores[p] for p in cand], dtype=np.float64)
    rel = (rel - rel.min()) / (rel.max() - rel.min()) if rel.max() > rel.min() else np.ones_like(rel)
    dim = next((len(items[p].vectors[vector]) for p in cand if vector in items[p].vectors), 0)
    vecs = np.array([items[p].vectors.get(vector, np.zeros(dim)) for p in cand], dtype=np.float64)
    chosen: list[int] = []
    max_sim = np.zeros(len(cand))
    available = np.ones(len(cand), dtype=bool)
    while len(chosen) < min(k, len(cand)):
        value = np.where(available, (1 - diversity) * rel - diversity * max_sim, -np.inf)
        best = int(np.argmax(value))
        chosen.append(best)
        available[best] = False
        if dim:
            max_sim = np.maximum(max_sim, vecs @ vecs[best])
    return [cand[i] for i in chosen]
