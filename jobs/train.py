"""`recsys train`: events → event log → ALS + co-occurrence → versioned artifacts → `behavior` vectors in Weaviate
(``recommender.refresh.train``)."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from recommender import components
from recommender.config import Settings
from recommender.events.log import EventRejected, parse_timestamp
from recommender.refresh.train import TrainOptions, TrainSummary

MAX_LISTED = 50


def add_parser(sub: Any) -> None:
    """Register the subcommand."""
    p = sub.add_parser("train", help="import events, fit ALS + co-occurrence, write behavior vectors")
    p.add_argument("--catalog", type=Path, required=True, help="catalog folder (DATA.md format)")
    p.add_argument("--events", type=Path, help="events file to import (default: the catalog's events.csv/.jsonl)")
    p.add_argument("--until", type=_timestamp, help="train on events before this ISO 8601 time (default: all)")
    p.add_argument("--force", action="store_true", help="refit even if data and settings are unchanged")
    p.add_argument("--no-store", action="store_true", help="save artifacts only; do not touch Weaviate")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def _timestamp(text: str) -> datetime:
    try:
        return parse_timestamp(text)
    except EventRejected as exc:
        raise argparse.ArgumentTypeError(exc.reason) from exc


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run the job; rejected event rows are reported, not fatal."""
    options = TrainOptions(args.catalog, args.events, args.until, args.force, not args.no_store, not args.no_progress)
    report(components.train_behaviour(options, settings))
    return 0


def report(summary: TrainSummary) -> None:
    """Print each rejected event row (capped), then the summary line."""
    errors = summary.imported.errors if summary.imported else ()
    for err in errors[:MAX_LISTED]:
        print(f"rejected event: {err}", file=sys.stderr)
    if len(errors) > MAX_LISTED:
        print(f"... and {len(errors) - MAX_LISTED} more rejected events", file=sys.stderr)
    print(summary.line())
