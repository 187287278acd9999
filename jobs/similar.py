"""`recsys similar`: a product's nearest neighbours by one named vector (a look at what the store holds)."""

from __future__ import annotations

import argparse
from typing import Any

from recommender import components
from recommender.config import Settings
from recommender.store.neighbours import neighbour_lines
from recommender.store.products import VECTOR_NAMES


def add_parser(sub: Any) -> None:
    """Register the subcommand."""
    p = sub.add_parser("similar", help="nearest neighbours of a product by its text or image vector")
    p.add_argument("product_id")
    p.add_argument("--vector", choices=VECTOR_NAMES, default="image")
    p.add_argument("-k", type=int, default=5)
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Print the neighbours."""
    with components.open_store(settings) as store:
        print("\n".join(neighbour_lines(store, args.product_id, args.vector, args.k)))
    return 0
