"""`recsys events migrate --from URL --to URL`: copy an event log into another (SQLite → PostgreSQL), idempotently."""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import Any

from recommender.config import Settings
from recommender.events.migrate import migrate_events


def add_parser(sub: Any) -> None:
    """Register the subcommand."""
    p = sub.add_parser("events", help="event-log maintenance: migrate one log into another")
    p.add_argument("action", choices=("migrate",))
    p.add_argument("--from", dest="source", default=None,
                   help="source log URL: sqlite:///PATH or postgresql://… (default: events.url, i.e. the configured)")
    p.add_argument("--to", dest="target", required=True, help="target log URL: postgresql://… or sqlite:///PATH")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Migrate and print the summary line."""
    source = replace(settings.events, url=args.source) if args.source else settings.events
    summary = migrate_events(source, replace(settings.events, url=args.target), settings.data_dir,
                             progress=not args.no_progress)
    print(summary.line())
    return 0
