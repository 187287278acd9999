"""A deterministic synthetic shop: catalog, product pictures and shopper events with known structure.

``generate_catalog`` writes a DATA.md catalog folder (``products.csv``, ``images/``, ``events.csv``) plus
``truth.csv``, the hidden facts each product was made from (type, colour, pattern, style cluster), so
tests and evaluations can check answers that are known by construction:

- looks: every picture is drawn from the product's true type, colour and pattern; the words name the
  colour only sometimes and the pattern never appears in a column (only, sometimes, in the description);
- behaviour: shoppers have a style (colours, patterns), category affinities and follow complements
  (jeans → sneakers, dress → bag, …), so co-occurrence carries signal beyond popularity.

Same seed → byte-identical files. Rows and pictures are streamed to disk, so big catalogs use flat memory.
The parts: ``vocabulary`` (categories, styles, words), ``draws`` (seeded streams), ``products`` (the catalog and
its pictures), ``shoppers`` (the simulated sessions), ``images`` (drawing a look).
"""

from __future__ import annotations

import csv
import os
import time
from dataclasses import dataclass
from pathlib import Path

from recommender.synthetic.draws import stream_rng
from recommender.synthetic.products import plan_products, write_products
from recommender.synthetic.shoppers import build_world, draw_shoppers, simulate, write_events
from recommender.synthetic.vocabulary import COMPLEMENTS


@dataclass(frozen=True)
class GenerationSummary:
    """What ``generate_catalog`` wrote, and how long it took."""

    out_dir: Path
    products: int
    images: int
    events: int
    shoppers: int
    sessions: int
    categories: int
    seconds: float

    def line(self) -> str:
        """A one-line human summary."""
        return (f"generated {self.products} products ({self.categories} categories), {self.images} images, "
                f"{self.events} events from {self.shoppers} shoppers in {self.sessions} sessions "
                f"→ {self.out_dir} in {self.seconds:.1f}s")


@dataclass(frozen=True)
class ProductTruth:
    """The hidden facts a synthetic product was made from (``truth.csv``)."""

    product_id: str
    product_type: str
    color: str
    pattern: str
    style_cluster: int



# --------------------------------------------------------------------------------------------- public
def generate_catalog(out_dir: Path | str, n_products: int = 360, n_shoppers: int = 320, n_events: int = 6000,
                     seed: int = 7, image_size: int = 96, progress: bool = True,
                     workers: int | None = None) -> GenerationSummary:
    """Write a synthetic shop (products.csv, images/, events.csv, truth.csv) to ``out_dir``.

    ``workers`` processes draw the pictures (default: up to 4 for catalogs of 2,000+ products);
    the output does not depend on it. ``progress`` shows tqdm bars and prints the summary line.
    """
    if n_products < 1 or n_shoppers < 1 or n_events < 0 or image_size < 16:
        raise ValueError("need n_products ≥ 1, n_shoppers ≥ 1, n_events ≥ 0 and image_size ≥ 16")
    began = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plan = plan_products(n_products, stream_rng(seed, 1))
    if workers is None:
        workers = min(4, os.cpu_count() or 1) if n_products >= 2000 else 1
    images = write_products(out, plan, seed, image_size, progress, max(1, workers))
    world = build_world(plan, stream_rng(seed, 4))
    shoppers = draw_shoppers(n_shoppers, world, stream_rng(seed, 5))
    log, sessions = simulate(world, shoppers, n_events, stream_rng(seed, 6), progress)
    events = write_events(out / "events.csv", log, n_products, n_shoppers, sessions)
    categories = len({int(c) for c in plan.category})
    summary = GenerationSummary(out, n_products, images, events, n_shoppers, sessions, categories,
                                round(time.perf_counter() - began, 3))
    if progress:
        print(summary.line())
    return summary


def read_truth(catalog_dir: Path | str) -> dict[str, ProductTruth]:
    """The hidden per-product facts (``truth.csv``) of a generated catalog, by product id."""
    with open(Path(catalog_dir) / "truth.csv", newline="", encoding="utf-8") as handle:
        return {row["product_id"]: ProductTruth(row["product_id"], row["product_type"], row["color"],
                                                row["pattern"], int(row["style_cluster"]))
                for row in csv.DictReader(handle)}


def complement_of(product_type: str) -> str:
    """The product type shoppers tend to look at after ``product_type``."""
    return COMPLEMENTS[product_type]
