"""Learning the fusion weights, and the candidate sources and single-signal baselines of one behaviour fit.

The learned fusion is fitted on inner time splits of the training events: behaviour fitted on the earlier part,
labelled candidates from the later part, so its weights never see what they are judged on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np
from tqdm import tqdm

from recommender.behaviour.fit import Behaviour, fit_behaviour
from recommender.config import CollaborativeSettings
from recommender.domain import BEHAVIOUR_VECTOR, RankQuery
from recommender.errors import RecommenderError
from recommender.events.log import Event
from recommender.events.protocol import build_tasks, split_point, time_split
from recommender.ranking.features import BehaviourContext, FeatureBuilder
from recommender.ranking.fusion import DEFAULT_WEIGHTS, FusionModel, RankingModel, Rules, configured_model, learn_model
from recommender.ranking.ltr import DEFAULT_PARAMS, LtrParams, RankingRows, TreeRanker, train_ranker
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


@dataclass
class MethodSet:
    """The recommenders of one evaluation, all sharing one behaviour fit and item cache."""

    sources: dict[str, CandidateSource]
    items: ItemLookup
    features: FeatureBuilder
    rules: Rules
    per_source: int
    methods: dict[str, Recommender] = field(default_factory=dict)

    def fused(self, name: str, model: RankingModel) -> FusionRanker:
        """A fusion ranker over every source."""
        return FusionRanker(name, list(self.sources.values()), self.items, self.features, model, self.rules,
                            self.per_source)


def method_set(behaviour: Behaviour, base_items: ItemLookup, near: NearVector, rules: Rules,
               per_source: int = 100) -> MethodSet:
    """Sources and single-signal baselines for one behaviour fit."""
    items = BehaviourOverlay(base_items, behaviour.model.behaviour_vectors() if behaviour.model else {})
    sources: dict[str, CandidateSource] = {
        "text": VectorNeighbours("text", items, near), "image": VectorNeighbours("image", items, near),
        "cooccurrence": CoOccurring(behaviour.cooccurrence), "session": SessionCoOccurring(behaviour.cooccurrence),
        "popularity": Popular(behaviour.popularity),
    }
    if behaviour.model is not None:
        sources[BEHAVIOUR_VECTOR] = AlsSimilar(behaviour.model, name=BEHAVIOUR_VECTOR)
        sources["als_user"] = AlsForUser(behaviour.model)
    context = BehaviourContext(behaviour.cooccurrence, behaviour.model, behaviour.popularity,
                               behaviour.recent_popularity)
    ms = MethodSet(sources, items, FeatureBuilder(context), rules, per_source)
    for name, source in (("popularity", "popularity"), ("cooccurrence", "cooccurrence"), ("als", BEHAVIOUR_VECTOR),
                         ("text", "text"), ("image", "image")):
        if source in sources:
            ms.methods[name] = SourceRanker(sources[source], items, rules, depth=per_source)
    return ms


class Task(Protocol):
    """A labelled query: what a page would ask, and the products that were relevant."""

    @property
    def user_id(self) -> str: ...

    @property
    def relevant(self) -> frozenset[str]: ...

    def query(self, k: int) -> RankQuery: ...


@dataclass(frozen=True)
class ShopperTask:
    """A "for you" task: a returning shopper with no anchor; relevant = what they took later (not bought before)."""

    user_id: str
    history: tuple[str, ...]
    purchased: frozenset[str]
    relevant: frozenset[str]

    def query(self, k: int) -> RankQuery:
        """The RankQuery the shopper's "for you" list sends."""
        return RankQuery(None, self.user_id, self.history, self.purchased, k)


def shopper_tasks(fit: Sequence[Event], label: Sequence[Event], history_limit: int = 20) -> list[ShopperTask]:
    """One task per shopper with history before the cut and new products after it, in a stable order."""
    mine: dict[str, list[Event]] = {}
    for e in fit:
        mine.setdefault(e.user_id, []).append(e)
    later: dict[str, set[str]] = {}
    for e in label:
        later.setdefault(e.user_id, set()).add(e.product_id)
    out = []
    for user in sorted(set(later) & set(mine)):
        recent = sorted(mine[user], key=lambda e: e.timestamp, reverse=True)
        history = tuple(dict.fromkeys(e.product_id for e in recent))[:history_limit]
        purchased = frozenset(e.product_id for e in recent if e.event == "purchase")
        if relevant := frozenset(later[user] - purchased):
            out.append(ShopperTask(user, history, purchased, relevant))
    return out


@dataclass(frozen=True)
class InnerRows:
    """Labelled candidates of the inner time folds: one query per task, its shopper, and the folds' cuts."""

    data: RankingRows
    users: tuple[str, ...]
    cuts: tuple[str, ...]

    def split_by_shopper(self, share: float, seed: int = 0) -> tuple[RankingRows, RankingRows]:
        """(train, validation): a random ``share`` of the shoppers, with all their queries of every fold, validate
        (folds overlap in time, so a session must never be on both sides)."""
        shoppers = sorted(set(self.users))
        rng = np.random.default_rng(seed)
        held = set(rng.choice(shoppers, max(1, int(len(shoppers) * share)), replace=False)) if shoppers else set()
        bounds = np.concatenate([[0], np.cumsum(self.data.groups)])
        fit = [i for i, user in enumerate(self.users) if user not in held]
        valid = [i for i, user in enumerate(self.users) if user in held]
        return _take(self.data, bounds, fit), _take(self.data, bounds, valid)


def _take(data: RankingRows, bounds: np.ndarray, queries: list[int]) -> RankingRows:
    if not queries:
        return RankingRows(data.rows[:0], data.labels[:0], data.groups[:0])
    idx = np.concatenate([np.arange(bounds[q], bounds[q + 1]) for q in queries])
    return RankingRows(data.rows[idx], data.labels[idx], data.groups[queries])


def inner_rows(train: Sequence[Event], base_items: ItemLookup, near: NearVector, settings: CollaborativeSettings,
               rules: Rules, per_source: int, max_tasks: int, seed: int = 0, progress: bool = True,
               folds: Sequence[float] = (0.3, 0.2, 0.1),
               tasks_of: Callable[..., Sequence[Task]] = build_tasks) -> InnerRows:
    """Labelled candidate rows from inner time splits of the training events (product-page tasks by default,
    ``tasks_of=shopper_tasks`` for the "for you" path).

    Each fold cuts the training events at a point leaving ``fraction`` of them for labels, fits behaviour on
    the part before and labels the candidates of the part after; several folds give more positives.
    """
    rows: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    users: list[str] = []
    rng = np.random.default_rng(seed)
    cuts = []
    for fraction in folds:
        cut = split_point(train, fraction)
        inner_fit, inner_label = time_split(train, cut)
        tasks = list(tasks_of(inner_fit, inner_label))
        if not tasks or not inner_fit:
            continue
        per_fold = max(1, max_tasks // len(folds))
        if len(tasks) > per_fold:
            tasks = [tasks[i] for i in sorted(rng.choice(len(tasks), per_fold, replace=False))]
        ms = method_set(fit_behaviour(inner_fit, settings, now=cut), base_items, near, rules, per_source)
        ranker = ms.fused("inner", configured_model(DEFAULT_WEIGHTS))
        for task in tqdm(tasks, desc=f"fusion training (fold {fraction:.0%})", disable=not progress):
            cs = ranker.candidate_set(task.query(10))
            if cs.ids:
                rows.append(cs.rows)
                labels.append(np.array([pid in task.relevant for pid in cs.ids], dtype=np.int8))
                users.append(task.user_id)
        cuts.append(cut.isoformat())
    if not rows:
        raise ValueError("no training candidates for the learned fusion")
    data = RankingRows(np.vstack(rows), np.concatenate(labels), np.array([len(r) for r in rows], dtype=np.int64))
    return InnerRows(data, tuple(users), tuple(cuts))


@dataclass(frozen=True)
class LearnedModels:
    """The models learned from one set of inner rows: configured weights standardised on them, the logistic
    regression fallback, and the learning-to-rank trees (None when not asked for or not learnable)."""

    configured: FusionModel
    logistic: FusionModel
    tree: TreeRanker | None = None


def learn_models(inner: InnerRows, ltr: LtrParams | None = DEFAULT_PARAMS, seed: int = 0,
                 valid_share: float = 0.2) -> LearnedModels:
    """Fit every model on the same inner rows (same candidates, same features, same folds)."""
    x, y = inner.data.rows, inner.data.labels
    learned = learn_model(x, y, seed=seed)
    learned = replace(learned, meta={**learned.meta, "inner_tasks": len(inner.users), "inner_splits": list(inner.cuts)})
    tree = None
    if ltr is not None:
        fit, valid = inner.split_by_shopper(valid_share, seed)
        try:
            tree = train_ranker(fit, valid, ltr, seed)
        except RecommenderError:  # no query with a relevant candidate: the logistic fallback stands
            tree = None
        else:
            tree.meta.update(inner_tasks=len(inner.users), inner_splits=list(inner.cuts))
    return LearnedModels(configured_model(DEFAULT_WEIGHTS, x), learned, tree)


def learn_fusion(train: Sequence[Event], base_items: ItemLookup, near: NearVector, settings: CollaborativeSettings,
                 rules: Rules, per_source: int, max_tasks: int, seed: int = 0, progress: bool = True,
                 folds: Sequence[float] = (0.3, 0.2, 0.1)) -> tuple[FusionModel, FusionModel]:
    """Configured (standardised on inner candidates) and learned (logistic) fusion models from inner time splits."""
    inner = inner_rows(train, base_items, near, settings, rules, per_source, max_tasks, seed, progress, folds)
    models = learn_models(inner, ltr=None, seed=seed)
    return models.configured, models.logistic
