"""`recsys evaluate-search`: how well titles find their product's image (and back) on a catalog folder
(``recommender.evaluation.search_eval``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from recommender import components
from recommender.config import Settings
from recommender.evaluation.search_eval import SearchEvalOptions


def add_parser(sub: Any) -> None:
    """Register the subcommand."""
    p = sub.add_parser("evaluate-search", help="text→image / image→text retrieval figures on a catalog (in memory)")
    p.add_argument("--catalog", type=Path, required=True, help="catalog folder (DATA.md format)")
    p.add_argument("--out", type=Path, required=True, help="folder for metrics.json and report.html")
    p.add_argument("--checkpoint", type=Path, help="image encoder checkpoint (default: as configured / current)")
    p.add_argument("--untrained", action="store_true",
                   help="the checkpoint's architecture at random init (the baseline training must beat)")
    p.add_argument("--products-from", type=Path, help="a manifest.json: evaluate only its held-out products")
    p.add_argument("--exclude-trained", action="store_true",
                   help="with the checkpoint in use: evaluate only the products its manifest held out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Evaluate, write metrics.json and report.html, print the headline figures."""
    options = SearchEvalOptions(args.catalog, args.out, args.untrained, args.products_from, args.exclude_trained,
                                not args.no_progress)
    metrics: dict[str, Any] = components.evaluate_search(options, settings, args.checkpoint)
    t2i, chance = metrics["text_to_image"], metrics["chance"]
    raw = metrics.get("text_to_image_uncorrected")
    uncorrected = f" (without the hubness correction: {_fmt(raw)})" if raw else ""
    print(f"{metrics['products']} products: text→image {_fmt(t2i)}{uncorrected}; image→text "
          f"{_fmt(metrics['image_to_text'])}; chance {_fmt(chance)}; wrote {args.out}/metrics.json and report.html")
    return 0


def _fmt(figures: Any) -> str:
    return ", ".join(f"{k} {v:.3f}" for k, v in figures.items())
