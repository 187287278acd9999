"""`recsys evaluate` as a library call: every method on a time split of a catalog's events, measured per slice,
written as metrics.json + report.html.

The catalog must be vectorized into the store first (`recsys vectorize --catalog DIR`).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from recommender.behaviour.fit import fit_behaviour
from recommender.catalog.reader import load_catalog
from recommender.config import Settings
from recommender.errors import RecommenderError
from recommender.evaluation.report import write_metrics, write_report
from recommender.evaluation.runner import METHODS, aggregate, run_methods
from recommender.events.log import Event, EventReader, find_events_file
from recommender.events.protocol import AnchorTask, build_tasks, split_point, time_split
from recommender.ranking.fusion import Rules
from recommender.ranking.learn import inner_rows, learn_models, method_set
from recommender.ranking.ltr import LtrParams
from recommender.ranking.service import nearest
from recommender.store.item_cache import ItemCache
from recommender.store.products import ProductStore
from recommender.timing import StageTimer


@dataclass(frozen=True)
class EvaluateOptions:
    """What one offline evaluation measures, and where it writes."""

    catalog: Path
    out: Path
    train_events: Path | None = None  # default: the catalog's events file
    test_events: Path | None = None  # default: a time split of the training events
    split_at: datetime | None = None  # events before it train (default: the last 20% test)
    test_until: datetime | None = None  # test events from this time on are ignored
    k: int = 10
    max_tasks: int = 0  # sample at most this many test tasks (0 = all)
    inner_tasks: int = 3000  # tasks the learned fusion is fitted on
    methods: tuple[str, ...] = METHODS
    progress: bool = True


def evaluate_offline(options: EvaluateOptions, settings: Settings,
                     open_store: Callable[[], AbstractContextManager[ProductStore]]) -> dict[str, Any]:
    """Load, split, fit, rank, measure, write metrics.json and report.html; the payload written."""
    started = time.perf_counter()
    known = {p.product_id for p in load_catalog(options.catalog).products}
    train, test, split_at, rejected = _split(options, known)
    tasks = build_tasks(train, test)
    if options.max_tasks and len(tasks) > options.max_tasks:
        rng = np.random.default_rng(0)
        tasks = [tasks[i] for i in sorted(rng.choice(len(tasks), options.max_tasks, replace=False))]
    if not tasks:
        raise RecommenderError("no test session has two or more distinct products: nothing to evaluate")
    unknown = set(options.methods) - set(METHODS)
    if unknown:
        raise RecommenderError(f"unknown method(s): {', '.join(sorted(unknown))}")
    # implicit's ALS wants single-threaded BLAS (it parallelises itself)
    with open_store() as store, threadpool_limits(1, "blas"):
        assert split_at is not None  # there are test tasks, so there is a split
        payload = _evaluate(store, settings, options, train, tasks, len(known), split_at)
    payload.update(split_at=split_at.isoformat() if split_at else None, train_events=len(train),
                   test_events=len(test), rejected_events=rejected, catalog=str(options.catalog))
    payload["seconds"]["total"] = time.perf_counter() - started
    write_metrics(options.out, payload)
    write_report(options.out, payload)
    return payload


def _split(options: EvaluateOptions, known: set[str]) -> tuple[list[Event], list[Event], datetime | None, int]:
    """(train events, test events, the split time, rejected rows)."""
    train_path = options.train_events or find_events_file(options.catalog)
    if train_path is None:
        raise RecommenderError(f"{options.catalog} has no events file; pass --train-events")
    reader = EventReader(train_path, known)
    events = list(reader)
    if options.test_events:
        test_reader = EventReader(options.test_events, known)
        train, test = events, list(test_reader)
        split_at = min(e.timestamp for e in test) if test else None
        rejected = len(reader.errors) + len(test_reader.errors)
    else:
        split_at = options.split_at or split_point(events)
        train, test = time_split(events, split_at)
        rejected = len(reader.errors)
    if options.test_until is not None:
        test = [e for e in test if e.timestamp < options.test_until]
    return train, test, split_at, rejected


def _evaluate(store: ProductStore, settings: Settings, options: EvaluateOptions, train: list[Event],
              tasks: Sequence[AnchorTask], catalog_size: int, clock: datetime) -> dict[str, Any]:
    stored = store.count()
    if stored < catalog_size:
        print(f"warning: the store holds {stored} products, the catalog {catalog_size}; "
              "run `recsys vectorize` on this catalog first", file=sys.stderr)
    items = ItemCache(store)
    near = nearest(store)
    rules = Rules()
    timer = StageTimer()
    with timer.stage("fit_behaviour"):
        behaviour = fit_behaviour(train, settings.collaborative, now=clock)
    ms = method_set(behaviour, items, near, rules, settings.ranking.per_source)  # as the API and the refresh serve
    if {"fused_configured", "fused_learned", "fused_ltr"} & set(options.methods):
        with timer.stage("inner_rows"):
            inner = inner_rows(train, items, near, settings.collaborative, rules, settings.ranking.per_source,
                               options.inner_tasks, progress=options.progress)
        with timer.stage("learn"):  # the logistic fusion and the trees, from the same inner rows
            models = learn_models(inner, ltr=LtrParams() if "fused_ltr" in options.methods else None)
        ms.methods["fused_configured"] = ms.fused("fused_configured", models.configured)
        ms.methods["fused_learned"] = ms.fused("fused_learned", models.logistic)
        options.out.mkdir(parents=True, exist_ok=True)
        models.logistic.save(options.out / "fusion_learned.json")
        if models.tree is not None:
            ms.methods["fused_ltr"] = ms.fused("fused_ltr", models.tree)
            models.tree.save(options.out)
            timer.add("learn_ltr", models.tree.meta["training"]["seconds"])  # within "learn"
    methods = {m: ms.methods[m] for m in options.methods if m in ms.methods}
    with timer.stage("rank"):
        ev = run_methods(methods, tasks, options.k, options.progress)

    def image_vectors(ids: Any) -> np.ndarray:
        views = items.get_many(ids)
        vecs = [views[p].vectors["image"] for p in ids if p in views and "image" in views[p].vectors]
        return np.array(vecs) if vecs else np.zeros((0, 1))

    result = aggregate(ev, options.k, catalog_size, behaviour.popularity, behaviour.users, image_vectors)
    return {"k": options.k, "tasks": len(tasks), "catalog_size": catalog_size, "methods": result,
            "seconds": timer.seconds, "headline": _headline(result, options.k)}


def _headline(result: dict[str, Any], k: int) -> str:
    key = f"ndcg@{k}"
    singles = {m: r["all"].get(key, 0.0) for m, r in result.items() if not m.startswith("fused")}
    learned = [m for m in ("fused_ltr", "fused_learned") if m in result]
    if not singles or not learned:
        return " · ".join(f"{m} {key}={r['all'].get(key, 0.0):.4f}" for m, r in result.items())
    best = max(singles, key=lambda m: singles[m])
    parts = []
    for m in learned:
        fused = result[m]["all"].get(key, 0.0)
        ratio = f"{fused / singles[best]:.2f}×" if singles[best] > 0 else "∞"
        parts.append(f"{m} {key} = {fused:.4f} ({ratio})")
    return f"{' · '.join(parts)} vs best single method ({best}) {singles[best]:.4f}"
