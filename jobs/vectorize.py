"""`recsys vectorize`: encode a catalog folder into the Weaviate product collection."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from recommender import components
from recommender.config import Settings
from recommender.vectorize import VectorizeSummary

MAX_LISTED = 50


def add_parser(sub: Any) -> None:
    """Register the subcommand."""
    p = sub.add_parser("vectorize", help="encode a catalog into Weaviate (skips unchanged products)")
    p.add_argument("--catalog", type=Path, required=True, help="catalog folder (DATA.md format)")
    p.add_argument("--allow-mass-delete", action="store_true",
                   help="delete stored products missing from the catalog even if they are many")
    p.add_argument("--rebuild", action="store_true", help="drop the collection first and re-encode all")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--engine", choices=("local", "ray"), help="run the stages in this process (local, the default) "
                   "or as a Ray Data pipeline (ray; needs the ray extra); default: vectorize.engine")
    p.add_argument("--address", help="with --engine ray: a running Ray cluster (default: start a local Ray)")
    p.add_argument("--ray-workers", type=int, help="with --engine ray: actors per encoder stage")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run the job. Rejected rows and images are reported, not fatal: the exit status is 0 when the
    store matches the catalog's valid rows."""
    settings = with_engine(settings, args)
    with components.open_store(settings) as store:
        if args.rebuild:
            store.drop()
        job = components.vectorizer(settings, store, progress=not args.no_progress)
        summary = job.run(args.catalog, allow_mass_delete=args.allow_mass_delete)
    components.write_vocabulary(settings, args.catalog)
    report(summary)
    return 0


def with_engine(settings: Settings, args: argparse.Namespace) -> Settings:
    """The settings with the engine flags given on the command line."""
    flags = {"engine": args.engine, "ray_address": args.address, "ray_workers": args.ray_workers}
    chosen = {k: v for k, v in flags.items() if v is not None}
    return replace(settings, vectorize=replace(settings.vectorize, **chosen)) if chosen else settings


def report(summary: VectorizeSummary) -> None:
    """Print each rejected row and image problem (capped), then the summary line."""
    for err in summary.errors[:MAX_LISTED]:
        print(f"rejected row: {err}", file=sys.stderr)
    for pid, why in summary.image_problems[:MAX_LISTED]:
        print(f"no image vector for {pid}: {why}", file=sys.stderr)
    hidden = max(0, len(summary.errors) - MAX_LISTED) + max(0, len(summary.image_problems) - MAX_LISTED)
    if hidden:
        print(f"... and {hidden} more problems", file=sys.stderr)
    print(summary.line())
