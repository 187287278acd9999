"""Run every method over the anchor tasks and aggregate metrics per method and slice.

Behaviour models are fitted on the training events only (never the store's published ones, which may have
seen the test period), with ``recommender.behaviour.fit``; the methods and the learned fusion come from
``recommender.ranking.learn``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm import tqdm

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
from recommender.events.protocol import SLICES, AnchorTask
from recommender.ranking.ranker import Recommender

log = logging.getLogger(__name__)
METHODS = ("popularity", "cooccurrence", "als", "text", "image", "fused_configured", "fused_learned", "fused_ltr")


@dataclass
class Evaluation:
    """Per-method ranked lists and timings over the tasks."""

    tasks: list[AnchorTask]
    lists: dict[str, list[list[str]]] = field(default_factory=dict)
    seconds: dict[str, list[float]] = field(default_factory=dict)


def run_methods(methods: Mapping[str, Recommender], tasks: Sequence[AnchorTask], k: int, progress: bool = True
                ) -> Evaluation:
    """Rank every task with every method, timing each request; the methods take turns task by task, each going
    first as often as the others (the first to rank a task fills the item cache), so their latencies are
    measured under the same machine load and cache."""
    ev = Evaluation(list(tasks))
    names = list(methods)
    lists: dict[str, list[list[str]]] = {name: [] for name in names}
    times: dict[str, list[float]] = {name: [] for name in names}
    for i, task in enumerate(tqdm(tasks, desc=f"evaluate {', '.join(names)}", disable=not progress)):
        query = task.query(k)
        for name in names[i % len(names):] + names[:i % len(names)]:
            method = methods[name]
            t0 = time.perf_counter()
            ranked: list[RankedItem] = method.rank(query)
            times[name].append(time.perf_counter() - t0)
            lists[name].append([r.product_id for r in ranked])
    ev.lists, ev.seconds = lists, times
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
