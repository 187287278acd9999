"""`recsys evaluate-ask`: score the ask service on a questions file (metrics.json + report.html)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from recommender import components
from recommender.ask.question_model import read_questions
from recommender.config import Settings


def add_parser(sub: Any) -> None:
    """Register the subcommand."""
    p = sub.add_parser("evaluate-ask", help="score answers to a questions file against their gold")
    p.add_argument("--catalog", type=Path, required=True, help="the catalog the store was vectorized from")
    p.add_argument("--questions", type=Path, required=True, help="a JSONL file from generate-questions")
    p.add_argument("--out", type=Path, required=True, help="the report folder")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Read the questions (bad lines reported), ask them all, print the summary line."""
    load = read_questions(args.questions)
    for problem in load.errors[:20]:
        print(f"skipped: {problem}", file=sys.stderr)
    payload = components.evaluate_ask_catalog(settings, args.catalog, load.questions, args.out,
                                              progress=not args.no_progress)
    print(payload["summary"])
    print(f"report: {args.out / 'report.html'}")
    return 0
