"""`recsys evaluate`: every method on a time split, metrics.json + report.html (``evaluation.offline``).

The catalog must be vectorized into the configured collection first (`recsys vectorize --catalog DIR`).
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from recommender import components
from recommender.config import Settings
from recommender.errors import RecommenderError
from recommender.evaluation.next_item_run import NextItemOptions
from recommender.evaluation.offline import EvaluateOptions
from recommender.evaluation.runner import METHODS


def add_parser(sub: Any) -> None:
    """Register the subcommand."""
    p = sub.add_parser("evaluate", help="offline evaluation of every method on a time split (or next-item)")
    p.add_argument("--catalog", type=Path, required=True)
    p.add_argument("--protocol", choices=("related", "next-item"), default="related",
                   help="related: product-page tasks on a time split; next-item: leave-last-out, all items ranked")
    p.add_argument("--stage", choices=("test", "valid"), default="test", help="next-item: which held-out item")
    p.add_argument("--sequence-model", type=Path,
                   help="next-item: a sequence model version dir or store (default: <data_dir>/models/sequence)")
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
    """Evaluate, print the headline and the counts."""
    if args.protocol == "next-item":
        return _next_item(args, settings)
    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    options = EvaluateOptions(args.catalog, args.out, args.train_events, args.test_events, _when(args.split_at),
                              _when(args.test_until), args.k, args.max_tasks, args.inner_tasks, methods,
                              not args.no_progress)
    payload = components.evaluate_offline(options, settings)
    print(payload["headline"])
    print(f"evaluate: tasks={payload['tasks']} train_events={payload['train_events']} "
          f"test_events={payload['test_events']} rejected={payload['rejected_events']} "
          f"| " + " ".join(f"{k}={v:.1f}s" for k, v in payload["seconds"].items()) + f" → {args.out}/report.html")
    return 0


def _next_item(args: argparse.Namespace, settings: Settings) -> int:
    options = NextItemOptions(args.catalog, args.out, args.train_events, args.stage, args.max_tasks,
                              not args.no_progress)
    payload = components.evaluate_next_item(options, settings, args.sequence_model)
    print(payload["headline"])
    print(f"evaluate next-item: shoppers={payload['tasks']} items={payload['catalog_size']} "
          f"events={payload['events']} rejected={payload['rejected_events']} | "
          + " ".join(f"{k}={v:.1f}s" for k, v in payload["seconds"].items()) + f" → {args.out}/report.html")
    return 0
