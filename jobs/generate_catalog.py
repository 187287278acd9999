"""`recsys generate-catalog`: write a deterministic synthetic shop (catalog, pictures, events)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from recommender.synthetic.shop import generate_catalog


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``generate-catalog`` subcommand."""
    p = subparsers.add_parser(
        "generate-catalog",
        help="write a synthetic shop: products.csv, images/, events.csv (+ truth.csv)",
        description="Generate a deterministic synthetic catalog in the DATA.md format. "
        "Same seed and sizes give byte-identical files.",
    )
    p.add_argument("--out", type=Path, required=True, help="output folder (created if missing)")
    p.add_argument("--products", type=int, default=360, help="number of products (default 360)")
    p.add_argument("--shoppers", type=int, default=320, help="number of simulated shoppers (default 320)")
    p.add_argument("--events", type=int, default=6000, help="target number of events (default 6000)")
    p.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    p.add_argument("--image-size", type=int, default=96, help="picture width and height in px (default 96)")
    p.add_argument("--workers", type=int, default=None, help="processes drawing pictures (default: auto)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace, settings: object = None) -> int:
    """Generate the catalog described by ``args`` (needs no settings); 0 on success, 2 on bad sizes."""
    try:
        generate_catalog(args.out, n_products=args.products, n_shoppers=args.shoppers, n_events=args.events,
                         seed=args.seed, image_size=args.image_size, progress=True,
                         workers=getattr(args, "workers", None))
    except ValueError as exc:
        print(f"generate-catalog: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run this job alone (``python -m jobs.generate_catalog --out DIR``)."""
    parser = argparse.ArgumentParser(prog="generate_catalog")
    sub = parser.add_subparsers(required=True)
    add_parser(sub)
    args = parser.parse_args(["generate-catalog", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
