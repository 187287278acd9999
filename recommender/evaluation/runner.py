"""Run every method over the anchor tasks and aggregate metrics per method and slice.

Behaviour models are fitted on the training events only (never the store's published ones, which may have
seen the test period). The learned fusion is fitted on an inner time split of the training events: models
on the earlier 80%, labelled candidates from the later 20%, so its weights never see the test period.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from tqdm import tqdm

from recommender.behaviour.als import CollaborativeModel, fit_als
from recommender.behaviour.cooccurrence import CoOccurrence, build_cooccurrence
from recommender.config import CollaborativeSettings
from recommender.domain import RankedItem
from recommender.evaluation.metrics import (
    catalog_coverage,
    hit_rate_at_k,
    intra_list_diversity,
    ndcg_at_k,
    novelty,
    recall_at_k,
    reciprocal_rank,
)
from recommender.evaluation.protocol import SLICES, AnchorTask, build_tasks, split_point, time_split
from recommender.events.interactions import build_interactions
from recommender.events.log import Event
from recommender.ranking.features import BehaviourContext, FeatureBuilder
from recommender.ranking.fusion import DEFAULT_WEIGHTS, FusionModel, Rules, configured_model, learn_model
from recommender.ranking.ranker import FusionRanker, Recommender, SourceRanker
from recommender.ranking.sources import (
    AlsForUser,
    AlsSimilar,
    CandidateSource,
    CoOccurring,
    NearVector,
    Popular,
    SessionCoOccurring,
    VectorNeighbours,
)
from recommender.store.item_cache import BehaviourOverlay, ItemLookup

log = logging.getLogger(__name__)
METHODS = ("popularity", "cooccurrence", "als", "text", "image", "fused_configured", "fused_learned")


@dataclass(frozen=True)
class Behaviour:
    """Behaviour fitted on one set of events."""

    cooccurrence: CoOccurrence
    model: CollaborativeModel | None
    popularity: dict[str, float]
    users: int
    recent_popularity: dict[str, float] = field(default_factory=dict)

    @property
    def context(self) -> BehaviourContext:
        """What the feature builder needs."""
        return BehaviourContext(self.cooccurrence, self.model, self.popularity, self.recent_popularity)


RECENT_DAYS = 28


def fit_behaviour(events: Sequence[Event], settings: CollaborativeSettings) -> Behaviour:
    """Co-occurrence, ALS and popularity (distinct users per product; overall and in the last weeks)."""
    sessions: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for e in sorted(events, key=lambda e: e.timestamp):
        sessions[e.session_id].append((e.product_id, e.event))
    cooc = build_cooccurrence(sessions.items(), max_session_items=settings.max_session_items)
    interactions = build_interactions(events, settings)
    model = fit_als(interactions, settings) if interactions.matrix.nnz else None
    pop = {pid: float(len(users)) for pid, users in _users_per_item(events).items()}
    newest = max((e.timestamp for e in events), default=None)
    recent = [e for e in events if newest is not None and (newest - e.timestamp).days < RECENT_DAYS]
    recent_pop = {pid: float(len(users)) for pid, users in _users_per_item(recent).items()}
    return Behaviour(cooc, model, pop, len({e.user_id for e in events}), recent_pop)


def _users_per_item(events: Sequence[Event]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for e in events:
        out[e.product_id].add(e.user_id)
    return out


@dataclass
class MethodSet:
    """The recommenders of one evaluation, all sharing one behaviour fit and item cache."""

    sources: dict[str, CandidateSource]
    items: ItemLookup
    features: FeatureBuilder
    rules: Rules
    per_source: int
    methods: dict[str, Recommender] = field(default_factory=dict)

    def fused(self, name: str, model: FusionModel) -> FusionRanker:
        """A fusion ranker over every source."""
        return FusionRanker(name, list(self.sources.values()), self.items, self.features, model, self.rules,
                            self.per_source)


def method_set(behaviour: Behaviour, base_items: ItemLookup, near: NearVector, rules: Rules,
               per_source: int = 100) -> MethodSet:
    """Sources and single-signal baselines for one behaviour fit."""
    items = BehaviourOverlay(base_items, behaviour.model.behavior_vectors() if behaviour.model else {})
    sources: dict[str, CandidateSource] = {
        "text": VectorNeighbours("text", items, near), "image": VectorNeighbours("image", items, near),
        "cooccurrence": CoOccurring(behaviour.cooccurrence), "session": SessionCoOccurring(behaviour.cooccurrence),
        "popularity": Popular(behaviour.popularity),
    }
    if behaviour.model is not None:
        sources["behavior"] = AlsSimilar(behaviour.model, name="behavior")
        sources["als_user"] = AlsForUser(behaviour.model)
    ms = MethodSet(sources, items, FeatureBuilder(behaviour.context), rules, per_source)
    for name, source in (("popularity", "popularity"), ("cooccurrence", "cooccurrence"), ("als", "behavior"),
                         ("text", "text"), ("image", "image")):
        if source in sources:
            ms.methods[name] = SourceRanker(sources[source], items, rules, depth=per_source)
    return ms


def learn_fusion(train: Sequence[Event], base_items: ItemLookup, near: NearVector, settings: CollaborativeSettings,
                 rules: Rules, per_source: int, max_tasks: int, seed: int = 0, progress: bool = True,
                 folds: Sequence[float] = (0.3, 0.2, 0.1)) -> tuple[FusionModel, FusionModel]:
    """Configured (standardised on inner candidates) and learned fusion models from inner time splits.

    Each fold cuts the training events at a point leaving ``fraction`` of them for labels, fits behaviour on
    the part before and labels the candidates of the part after; several folds give more positives.
    """
    rows: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    rng = np.random.default_rng(seed)
    cuts = []
    for fraction in folds:
        cut = split_point(train, fraction)
        inner_fit, inner_label = time_split(train, cut)
        tasks = build_tasks(inner_fit, inner_label)
        if not tasks or not inner_fit:
            continue
        per_fold = max(1, max_tasks // len(folds))
        if len(tasks) > per_fold:
            tasks = [tasks[i] for i in sorted(rng.choice(len(tasks), per_fold, replace=False))]
        ms = method_set(fit_behaviour(inner_fit, settings), base_items, near, rules, per_source)
        ranker = ms.fused("inner", configured_model(DEFAULT_WEIGHTS))
        for task in tqdm(tasks, desc=f"fusion training (fold {fraction:.0%})", disable=not progress):
            cs = ranker.candidate_set(task.query(10))
            if cs.ids:
                rows.append(cs.rows)
                labels.append(np.array([pid in task.relevant for pid in cs.ids], dtype=np.int8))
        cuts.append(cut.isoformat())
    if not rows:
        raise ValueError("no training candidates for the learned fusion")
    x, y = np.vstack(rows), np.concatenate(labels)
    learned = learn_model(x, y, seed=seed)
    learned = replace(learned, meta={**learned.meta, "inner_tasks": len(rows), "inner_splits": cuts})
    return configured_model(DEFAULT_WEIGHTS, x), learned


@dataclass
class Evaluation:
    """Per-method ranked lists and timings over the tasks."""

    tasks: list[AnchorTask]
    lists: dict[str, list[list[str]]] = field(default_factory=dict)
    seconds: dict[str, list[float]] = field(default_factory=dict)


def run_methods(methods: Mapping[str, Recommender], tasks: Sequence[AnchorTask], k: int, progress: bool = True
                ) -> Evaluation:
    """Rank every task with every method, timing each request."""
    ev = Evaluation(list(tasks))
    for name, method in methods.items():
        lists, times = [], []
        for task in tqdm(tasks, desc=f"evaluate {name}", disable=not progress):
            t0 = time.perf_counter()
            ranked: list[RankedItem] = method.rank(task.query(k))
            times.append(time.perf_counter() - t0)
            lists.append([r.product_id for r in ranked])
        ev.lists[name], ev.seconds[name] = lists, times
    return ev


def aggregate(ev: Evaluation, k: int, catalog_size: int, popularity: Mapping[str, float], n_users: int,
              image_vectors: Callable[[Sequence[str]], np.ndarray]) -> dict[str, Any]:
    """metrics.json's per-method, per-slice figures (stable keys)."""
    out: dict[str, Any] = {}
    pop = {p: int(v) for p, v in popularity.items()}
    for method, lists in ev.lists.items():
        per_slice: dict[str, Any] = {}
        for slice_name in SLICES:
            idx = [i for i, t in enumerate(ev.tasks) if t.in_slice(slice_name)]
            per_slice[slice_name] = _slice_metrics([ev.tasks[i] for i in idx], [lists[i] for i in idx], k,
                                                   catalog_size, pop, max(n_users, 1), image_vectors)
        times = np.array(ev.seconds[method]) * 1000
        per_slice["latency_ms"] = {"p50": float(np.percentile(times, 50)) if len(times) else 0.0,
                                   "p99": float(np.percentile(times, 99)) if len(times) else 0.0}
        out[method] = per_slice
    return out


def _slice_metrics(tasks: Sequence[AnchorTask], lists: Sequence[list[str]], k: int, catalog_size: int,
                   pop: Mapping[str, int], n_users: int, image_vectors: Callable[[Sequence[str]], np.ndarray]
                   ) -> dict[str, float]:
    if not tasks:
        return {"tasks": 0}
    pairs = list(zip(tasks, lists, strict=True))
    return {
        "tasks": len(tasks),
        f"hit_rate@{k}": float(np.mean([hit_rate_at_k(r, t.relevant, k) for t, r in pairs])),
        f"recall@{k}": float(np.mean([recall_at_k(r, t.relevant, k) for t, r in pairs])),
        f"ndcg@{k}": float(np.mean([ndcg_at_k(r, t.relevant, k) for t, r in pairs])),
        "mrr": float(np.mean([reciprocal_rank(r, t.relevant) for t, r in pairs])),
        f"coverage@{k}": catalog_coverage(lists, catalog_size, k),
        f"diversity@{k}": float(np.mean([intra_list_diversity(image_vectors(r[:k])) for r in lists if len(r) > 1]
                                        or [0.0])),
        f"novelty@{k}": float(np.mean([novelty(r, pop, n_users, k) for r in lists if r] or [0.0])),
    }
