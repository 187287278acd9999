"""`recsys refresh`: what the nightly scheduler runs (``recommender.refresh.pipeline``).

Exit status: 0 published (or nothing to do), 3 the gate refused the candidate (the served release stays), 2 error.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path
from typing import Any

from recommender import components
from recommender.config import Settings
from recommender.events.log import EventRejected, parse_timestamp
from recommender.refresh.pipeline import RefreshOptions

NOT_PUBLISHED = 3


def add_parser(sub: Any) -> None:
    """Register the subcommand."""
    p = sub.add_parser("refresh", help="nightly: import events, vectorize changes, retrain, gate, publish")
    p.add_argument("--catalog", type=Path, required=True, help="catalog folder (DATA.md format)")
    p.add_argument("--events", type=Path, help="events file to import (default: the catalog's events.csv/.jsonl)")
    p.add_argument("--allow-mass-delete", action="store_true", help="let vectorize delete over half of the store")
    p.add_argument("--fusion-weights", type=Path,
                   help="a fusion model JSON to use instead of learning one (it still has to pass the gate)")
    p.add_argument("--force", action="store_true",
                   help="re-import the events file, refit and re-rank everything even if nothing changed")
    p.add_argument("--no-publish", action="store_true", help="build and evaluate the release, do not publish it")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--now", type=_timestamp,
                   help="the refresh's clock, ISO 8601: decay and 'recent' are measured from it and later events "
                        "wait for a later run (default: the start of today, UTC)")
    p.set_defaults(func=run)


def _timestamp(text: str) -> datetime:
    try:
        return parse_timestamp(text)
    except EventRejected as exc:
        raise argparse.ArgumentTypeError(exc.reason) from exc


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run one refresh, print what it did."""
    options = RefreshOptions(args.catalog, args.events, args.allow_mass_delete, args.fusion_weights, args.force,
                             not args.no_publish, not args.no_progress, args.now)
    summary = components.refresh(options, settings)
    print("\n".join(summary.report()))
    return 0 if summary.published or not summary.release or args.no_publish else NOT_PUBLISHED
