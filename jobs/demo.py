"""`recsys demo`: the shipped fixtures end to end — start Weaviate, train the image encoder, run the nightly
refresh once (vectorize, fit behaviour, learn the fusion, precompute the product pages, publish), show neighbours."""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path
from typing import Any

from recommender import components
from recommender.alignment.pipeline import train_image_encoder
from recommender.alignment.train import TrainConfig
from recommender.catalog.reader import load_catalog
from recommender.config import Settings
from recommender.events.log import EventRejected, parse_timestamp
from recommender.refresh.pipeline import RefreshOptions
from recommender.store.neighbours import neighbour_lines
from recommender.store.products import ProductStore
from recommender.store.server import LocalWeaviate

DEMO_EPOCHS = 30
DEMO_MINUTES = 3.0


def add_parser(sub: Any) -> None:
    """Register the subcommand."""
    p = sub.add_parser("demo", help="run the demo on a catalog (default: the shipped fixtures)")
    p.add_argument("--catalog", type=Path, default=Path("fixtures"))
    p.add_argument("--examples", type=int, default=3, help="products to show neighbours for")
    p.add_argument("--now", type=_timestamp, help="the refresh's clock (ISO 8601; default: the wall clock); the "
                                                  "fixtures' demo replays their last day so decay means something")
    p.set_defaults(func=run)


def _timestamp(text: str) -> datetime:
    try:
        return parse_timestamp(text)
    except EventRejected as exc:
        raise argparse.ArgumentTypeError(exc.reason) from exc


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Start a local Weaviate that keeps running, vectorize the catalog, print neighbours."""
    if not settings.weaviate.url:
        server = LocalWeaviate.from_settings(settings)
        server.start(detach=True)
        print(f"Weaviate ready at {server.url}; stop it with `recsys weaviate stop`")
    ensure_image_encoder(settings, args.catalog)
    image_encoder = components.image_encoder(settings)
    print("\n".join(components.refresh(RefreshOptions(args.catalog, now=args.now), settings).report()))
    with components.open_store(settings, autostart=False) as store:
        show_examples(store, args.catalog, args.examples)
    if image_encoder.is_untrained:
        print("\nNote: the image encoder is an UNTRAINED open_clip tower (random weights, seeded). Its "
              "neighbours reflect raw colour/shape statistics only, not learned meaning.")
    return 0


def ensure_image_encoder(settings: Settings, catalog: Path) -> None:
    """Train a small image encoder on the catalog (a few minutes) unless one is configured or already trained."""
    s = settings.image_encoder
    current = components.image_encoder_dir(settings) / "current"
    if s.checkpoint is not None or s.pretrained is not None or current.exists():
        return
    print("No trained image encoder yet: training one on the catalog (a short run, a few minutes on 2 cores)")
    summary = train_image_encoder(catalog, components.image_encoder_dir(settings), components.text_encoder(settings),
                                  TrainConfig(epochs=DEMO_EPOCHS, max_minutes=DEMO_MINUTES,
                                              threads=s.threads or TrainConfig.threads))
    print(summary.line())


def show_examples(store: ProductStore, catalog: Path, n: int) -> None:
    """Neighbours by text and by image for the first few products of the catalog."""
    products = load_catalog(catalog).products
    step = max(1, len(products) // max(1, n))
    for product in products[::step][:n]:
        for vector in ("text", "image"):
            print()
            print("\n".join(neighbour_lines(store, product.product_id, vector, 5)))
