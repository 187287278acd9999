"""A small coordinate search over behaviour settings, judged on the next-item validation items.

Starting from the given settings, each parameter in turn tries its grid values with the others fixed and keeps the
best (NDCG@10 of the "for you" fusion on the shoppers' validation items, behaviour fitted on everything before
them). One pass over the parameters keeps the cost to Σ|grid| fits instead of Π|grid|. The plain ``implicit`` ALS
baseline (128 factors, implicit's defaults, binary matrix) is measured on the same split so the choice is known
never to lose to it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from recommender.behaviour.fit import fit_behaviour
from recommender.config import CollaborativeSettings
from recommender.evaluation.next_item import NextItemSplit, evaluate_methods
from recommender.evaluation.next_item_methods import als_scorer, for_you_scorers, plain_als_settings

GRID: Mapping[str, tuple[float, ...]] = {
    "session_gap_hours": (0.0, 72.0),  # 0 = DATA.md's user + day; 72 h = a shopper's whole recent run of days
    "factors": (64, 128),
    "regularization": (0.01, 0.05),
    "alpha": (1.0, 10.0, 40.0),
    "half_life_days": (0.0, 90.0),
}
OBJECTIVE = ("for_you", "ndcg@10")


@dataclass(frozen=True)
class TuneResult:
    """The chosen settings, every trial, and the plain-ALS baseline on the same validation split."""

    chosen: dict[str, Any]
    score: float
    trials: tuple[dict[str, Any], ...]
    baseline: dict[str, float]
    seconds: float
    users: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe form (what the tuned artifact records)."""
        return asdict(self)


def _score(split: NextItemSplit, settings: CollaborativeSettings, max_tasks: int) -> dict[str, float]:
    behaviour = fit_behaviour(split.fit_events("valid"), settings, now=split.clock("valid"))
    method = for_you_scorers(behaviour, split.items, split.users)[OBJECTIVE[0]]
    return evaluate_methods(split, "valid", {OBJECTIVE[0]: method}, max_tasks=max_tasks)[OBJECTIVE[0]]


def tune(split: NextItemSplit, start: CollaborativeSettings, grid: Mapping[str, Sequence[float]] = GRID,
         max_tasks: int = 0, progress: bool = True) -> TuneResult:
    """Coordinate search of ``grid`` from ``start`` on (a seeded sample of ``max_tasks``) validation shoppers;
    ties keep the value tried first."""
    t0 = time.perf_counter()
    best, trials, cache = start, [], {}
    steps = [(name, value) for name, values in grid.items() for value in values]
    with threadpool_limits(1, "blas"):
        best_score = -np.inf
        for name, value in tqdm(steps, desc="tune", disable=not progress):
            candidate = replace(best, **{name: type(getattr(best, name))(value)})
            key = tuple(sorted(asdict(candidate).items()))
            if key not in cache:
                cache[key] = _score(split, candidate, max_tasks)
                trials.append({"settings": {p: getattr(candidate, p) for p in grid}, **cache[key]})
            score = cache[key][OBJECTIVE[1]]
            if score > best_score:
                best, best_score = candidate, score
        plain = fit_behaviour(split.fit_events("valid"), plain_als_settings(start.threads),
                              now=split.clock("valid"))
        baseline = evaluate_methods(split, "valid", {"implicit_als": als_scorer(plain, split.items, split.users)},
                                    max_tasks=max_tasks)
    chosen = {p: getattr(best, p) for p in grid}
    return TuneResult(chosen, float(best_score), tuple(trials), baseline["implicit_als"],
                      time.perf_counter() - t0, min(len(split.tasks("valid")[0]), max_tasks or len(split.users)))
