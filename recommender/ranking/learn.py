"""Learning the fusion weights, and the candidate sources and single-signal baselines of one behaviour fit.

The learned fusion is fitted on inner time splits of the training events: behaviour fitted on the earlier part,
labelled candidates from the later part, so its weights never see what they are judged on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from tqdm import tqdm

from recommender.behaviour.fit import Behaviour, fit_behaviour
from recommender.config import CollaborativeSettings
from recommender.domain import BEHAVIOUR_VECTOR
from recommender.events.log import Event
from recommender.events.protocol import build_tasks, split_point, time_split
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
        ms = method_set(fit_behaviour(inner_fit, settings, now=cut), base_items, near, rules, per_source)
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
