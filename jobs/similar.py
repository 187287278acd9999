"""`recsys similar`: a product's nearest neighbours by one named vector (a look at what the store holds)."""

from __future__ import annotations

import argparse
from typing import Any

from recommender import components
from recommender.config import Settings
from recommender.errors import RecommenderError
from recommender.store.products import VECTOR_NAMES, ProductStore


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
        print_similar(store, args.product_id, args.vector, args.k)
    return 0


def print_similar(store: ProductStore, product_id: str, vector: str, k: int) -> None:
    """Print a product and its k nearest neighbours by one named vector."""
    obj = store.get(product_id, with_vectors=True)
    if obj is None:
        raise RecommenderError(f"product {product_id!r} is not in the store")
    if vector not in obj["_vectors"]:
        raise RecommenderError(f"product {product_id!r} has no {vector} vector ({obj.get('image_error')})")
    print(f"{product_id}  {obj['title']}  [{obj['category']}, {obj['color']}]  — nearest by {vector}:")
    for hit in store.near_vector(obj["_vectors"][vector], vector, k + 1):
        if hit.product_id != product_id:
            p = hit.properties
            print(f"  {1 - hit.distance:6.3f}  {hit.product_id}  {p['title']}  [{p['category']}, {p['color']}]")
