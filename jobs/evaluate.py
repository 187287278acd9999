"""`recsys evaluate`: every method on a time split, metrics.json + report.html.

The catalog must be vectorized into the configured collection first (`recsys vectorize --catalog DIR`).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from recommender import components
from recommender.behaviour.fit import fit_behaviour
from recommender.catalog.reader import load_catalog
from recommender.config import Settings
from recommender.errors import RecommenderError
from recommender.evaluation.report import write_metrics, write_report
from recommender.evaluation.runner import METHODS, aggregate, run_methods
from recommender.events.log import EventReader, find_events_file
from recommender.events.protocol import build_tasks, split_point, time_split
from recommender.ranking.fusion import Rules
from recommender.ranking.learn import learn_fusion, method_set
from recommender.ranking.service import nearest
from recommender.store.item_cache import ItemCache
from recommender.store.products import ProductStore
from recommender.timing import StageTimer


def add_parser(sub: Any) -> None:
    """Register the subcommand."""
    p = sub.add_parser("evaluate", help="offline evaluation of every method on a time split")
    p.add_argument("--catalog", type=Path, required=True)
    p.add_argument("--train-events", type=Path, help="default: the catalog's events file")
    p.add_argument("--test-events", type=Path, help="default: a time split of the training events file")
    p.add_argument("--split-at", help="ISO timestamp; events before it train (default: last 20%% test)")
    p.add_argument("--test-until", help="ISO timestamp; test events from this time on are ignored")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--max-tasks", type=int, default=0, help="sample at most this many test tasks (0 = all)")
    p.add_argument("--inner-tasks", type=int, default=3000, help="tasks used to learn the fusion weights")
    p.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset of " + ",".join(METHODS))
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def _when(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise RecommenderError(f"not an ISO timestamp: {text!r}") from exc
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Load, split, fit, rank, measure, write."""
    started = time.perf_counter()
    catalog = load_catalog(args.catalog)
    known = {p.product_id for p in catalog.products}
    train_path = args.train_events or find_events_file(args.catalog)
    if train_path is None:
        raise RecommenderError(f"{args.catalog} has no events file; pass --train-events")
    reader = EventReader(train_path, known)
    events = list(reader)
    if args.test_events:
        test_reader = EventReader(args.test_events, known)
        train, test = events, list(test_reader)
        split_at = min(e.timestamp for e in test) if test else None
        rejected = len(reader.errors) + len(test_reader.errors)
    else:
        split_at = _when(args.split_at) or split_point(events)
        train, test = time_split(events, split_at)
        rejected = len(reader.errors)
    until = _when(args.test_until)
    if until is not None:
        test = [e for e in test if e.timestamp < until]
    tasks = build_tasks(train, test)
    if args.max_tasks and len(tasks) > args.max_tasks:
        rng = np.random.default_rng(0)
        tasks = [tasks[i] for i in sorted(rng.choice(len(tasks), args.max_tasks, replace=False))]
    if not tasks:
        raise RecommenderError("no test session has two or more distinct products: nothing to evaluate")
    wanted = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = set(wanted) - set(METHODS)
    if unknown:
        raise RecommenderError(f"unknown method(s): {', '.join(sorted(unknown))}")
    # implicit's ALS wants single-threaded BLAS (it parallelises itself); set here, at the entry point.
    with components.open_store(settings) as store, threadpool_limits(1, "blas"):
        payload = _evaluate(store, settings, args, train, tasks, wanted, len(known), progress=not args.no_progress)
    payload.update(split_at=split_at.isoformat() if split_at else None, train_events=len(train),
                   test_events=len(test), rejected_events=rejected, catalog=str(args.catalog))
    payload["seconds"]["total"] = time.perf_counter() - started
    write_metrics(args.out, payload)
    write_report(args.out, payload)
    print(payload["headline"])
    print(f"evaluate: tasks={len(tasks)} train_events={len(train)} test_events={len(test)} rejected={rejected} "
          f"| " + " ".join(f"{k}={v:.1f}s" for k, v in payload["seconds"].items()) + f" → {args.out}/report.html")
    return 0


def _evaluate(store: ProductStore, settings: Settings, args: argparse.Namespace, train: list, tasks: list,
              wanted: list[str], catalog_size: int, progress: bool) -> dict[str, Any]:
    stored = store.count()
    if stored < catalog_size:
        print(f"warning: the store holds {stored} products, the catalog {catalog_size}; "
              "run `recsys vectorize` on this catalog first", file=sys.stderr)
    items = ItemCache(store)

    near = nearest(store)
    rules = Rules()
    timer = StageTimer()
    with timer.stage("fit_behaviour"):
        behaviour = fit_behaviour(train, settings.collaborative)
    ms = method_set(behaviour, items, near, rules)
    if {"fused_configured", "fused_learned"} & set(wanted):
        with timer.stage("learn_fusion"):
            configured, learned = learn_fusion(train, items, near, settings.collaborative, rules, 100,
                                               args.inner_tasks, progress=progress)
        ms.methods["fused_configured"] = ms.fused("fused_configured", configured)
        ms.methods["fused_learned"] = ms.fused("fused_learned", learned)
        args.out.mkdir(parents=True, exist_ok=True)
        learned.save(args.out / "fusion_learned.json")
    methods = {m: ms.methods[m] for m in wanted if m in ms.methods}
    with timer.stage("rank"):
        ev = run_methods(methods, tasks, args.k, progress)

    def image_vectors(ids: Any) -> np.ndarray:
        views = items.get_many(ids)
        vecs = [views[p].vectors["image"] for p in ids if p in views and "image" in views[p].vectors]
        return np.array(vecs) if vecs else np.zeros((0, 1))

    result = aggregate(ev, args.k, catalog_size, behaviour.popularity, behaviour.users, image_vectors)
    return {"k": args.k, "tasks": len(tasks), "catalog_size": catalog_size, "methods": result,
            "seconds": timer.seconds, "headline": _headline(result, args.k)}


def _headline(result: dict[str, Any], k: int) -> str:
    key = f"ndcg@{k}"
    singles = {m: r["all"].get(key, 0.0) for m, r in result.items() if not m.startswith("fused")}
    if not singles or "fused_learned" not in result:
        return " · ".join(f"{m} {key}={r['all'].get(key, 0.0):.4f}" for m, r in result.items())
    best = max(singles, key=lambda m: singles[m])
    fused = result["fused_learned"]["all"].get(key, 0.0)
    gain = (fused / singles[best] - 1) * 100 if singles[best] > 0 else float("inf")
    return (f"fused (learned) {key} = {fused:.4f} vs best single method ({best}) {singles[best]:.4f}: "
            f"{gain:+.1f}%")
