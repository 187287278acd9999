"""`recsys tune`: search behaviour settings on a catalog's next-item validation split and record the choice
as the data dir's tuned defaults, used by the next train/refresh (``recommender.tuning``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from recommender import components
from recommender.config import Settings
from recommender.tuning.run import TuneOptions


def add_parser(sub: Any) -> None:
    """Register the subcommand."""
    p = sub.add_parser("tune", help="choose ALS and session settings on the next-item validation split")
    p.add_argument("--catalog", type=Path, required=True)
    p.add_argument("--events", type=Path, help="default: the catalog's events file")
    p.add_argument("--max-tasks", type=int, default=5000, help="validation shoppers per trial (0 = all)")
    p.add_argument("--dry-run", action="store_true", help="measure and print, record nothing")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Tune, print the choice beside the plain-ALS baseline."""
    options = TuneOptions(args.catalog, args.events, args.max_tasks, not args.dry_run, not args.no_progress)
    out = components.tune_behaviour(options, settings)
    print("tune: chosen " + " ".join(f"{k}={v}" for k, v in out["chosen"].items()))
    print(f"tune: for_you NDCG@10 {out['score']:.4f} vs implicit ALS {out['baseline']['ndcg@10']:.4f} "
          f"(validation, {out['users']} shoppers) | trials={len(out['trials'])} {out['seconds']:.1f}s"
          + (f" → tuned version {out['version']}" if out["version"] else " (dry run: nothing recorded)"))
    return 0
