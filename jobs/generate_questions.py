"""`recsys generate-questions`: evaluation questions with gold constraints, made from a catalog's own attributes."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from recommender.ask.questions import generate_questions, write_injected_catalog, write_questions
from recommender.catalog.reader import CatalogReader
from recommender.config import Settings


def add_parser(sub: Any) -> None:
    """Register the subcommand."""
    p = sub.add_parser("generate-questions", help="write ask evaluation questions (JSONL) from a catalog")
    p.add_argument("--catalog", type=Path, required=True, help="the catalog folder (DATA.md)")
    p.add_argument("--out", type=Path, required=True, help="the questions file to write (JSONL)")
    p.add_argument("--per-kind", type=int, default=40, help="questions per kind")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--inject", type=int, default=0, metavar="N",
                   help="also write a copy of the catalog with N descriptions carrying instructions (to --injected)")
    p.add_argument("--injected", type=Path, help="with --inject: where to write the injected catalog copy")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Generate, optionally inject, write."""
    questions = generate_questions(CatalogReader(args.catalog), seed=args.seed, per_kind=args.per_kind)
    if args.inject:
        if args.injected is None:
            raise SystemExit("generate-questions: --inject needs --injected DIR")
        questions += write_injected_catalog(args.catalog, args.injected, args.inject, seed=args.seed)
    write_questions(args.out, questions)
    kinds: dict[str, int] = {}
    for q in questions:
        kinds[q.kind] = kinds.get(q.kind, 0) + 1
    print(f"generate-questions: wrote {len(questions)} questions to {args.out} "
          f"({', '.join(f'{k}={v}' for k, v in sorted(kinds.items()))})")
    return 0
