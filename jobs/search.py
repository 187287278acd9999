"""`recsys search`: multimodal search from the command line, printing ranked hits with per-signal scores."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from recommender import components
from recommender.config import Settings
from recommender.errors import RecommenderError
from recommender.search.searcher import (
    SEARCHABLE_VECTORS,
    QueryEncoders,
    Searcher,
    SearchFilters,
    SearchRequest,
    SearchResult,
)


def add_parser(sub: Any) -> None:
    """Register the subcommand."""
    p = sub.add_parser("search", help="search products by text and/or image (fused over named vectors)")
    p.add_argument("text", nargs="?", help="the text query")
    p.add_argument("--image", type=Path, help="an image file to search with")
    p.add_argument("--vector", action="append", choices=SEARCHABLE_VECTORS, dest="vectors",
                   help="target vector to search (repeat; default: text and image)")
    p.add_argument("--category", help="category path prefix, e.g. 'Women > Bottoms'")
    p.add_argument("--price-min", type=float)
    p.add_argument("--price-max", type=float)
    p.add_argument("--in-stock", action="store_true", help="only products in stock")
    p.add_argument("-k", type=int, default=10)
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Encode the query, search, print the ranking."""
    request = SearchRequest(
        text=args.text, image=_read(args.image) if args.image else None, vectors=tuple(args.vectors or ()),
        filters=SearchFilters(category=args.category, price_min=args.price_min, price_max=args.price_max,
                              in_stock=args.in_stock),
        k=args.k)
    encoders = QueryEncoders(lambda: components.text_encoder(settings), lambda: components.image_encoder(settings))
    with components.open_store(settings) as store:
        result = Searcher(store, encoders, settings.search).search(request)
    print_result(result)
    return 0


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise RecommenderError(f"cannot read image {path}: {exc.strerror or exc}") from exc


def print_result(result: SearchResult) -> None:
    """One line per hit: rank, fused score, per-signal cosines, id, title, category, price."""
    weights = "  ".join(f"{s}×{w:g}" for s, w in result.weights.items())
    print(f"{len(result.hits)} hits from {result.candidates} candidates; fused = {weights}")
    for rank, h in enumerate(result.hits, start=1):
        scores = " ".join(f"{s}={v:.3f}" for s, v in h.scores.items())
        price = "-" if h.price is None else f"{h.price:.2f}"
        print(f"{rank:3d}. {h.score:6.3f}  [{scores}]  {h.product_id}  {h.title}  [{h.category}]  {price}")
    t = result.timings
    print(f"encode {t.get('encode_s', 0):.2f}s  retrieve {t.get('retrieve_s', 0):.2f}s  fuse {t.get('fuse_s', 0):.3f}s")
