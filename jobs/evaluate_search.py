"""`recsys evaluate-search`: how well titles find their product's image (and back) on a catalog folder."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from recommender import components
from recommender.catalog.images import ImageLimits
from recommender.config import Settings
from recommender.encoders.image import OpenClipImageEncoder
from recommender.errors import ConfigError
from recommender.evaluation.search_eval import evaluate_catalog


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


def held_out_ids(manifest_path: Path) -> set[str]:
    """Product ids a training manifest lists as held out (never trained on)."""
    from recommender.encoders.checkpoint import checkpoint_dir

    file = checkpoint_dir(manifest_path) / "manifest.json" if manifest_path.is_dir() else manifest_path
    try:
        ids = json.loads(file.read_text(encoding="utf-8"))["data"]["holdout_product_ids"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{file}: not a training manifest with data.holdout_product_ids ({exc})") from exc
    if not ids:
        raise ConfigError(f"{file}: the training held out no products (train with --holdout-fraction)")
    return {str(i) for i in ids}


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Evaluate, write metrics.json and report.html, print the headline figures."""
    if args.checkpoint is not None:
        settings = replace(settings, image_encoder=replace(settings.image_encoder, checkpoint=args.checkpoint))
    configured = components.image_encoder(settings)
    text_encoder = components.text_encoder(settings)
    configured.check_text_encoder(text_encoder.identity)
    checkpoint = configured.checkpoint
    encoder = OpenClipImageEncoder(replace(settings.image_encoder, checkpoint=checkpoint), load_weights=False) \
        if args.untrained else configured
    source = args.products_from or (checkpoint if args.exclude_trained else None)
    if args.exclude_trained and checkpoint is None:
        raise ConfigError("--exclude-trained needs a trained checkpoint (none configured, no current one)")
    only = held_out_ids(source) if source is not None else None
    v = settings.vectorize
    result = evaluate_catalog(args.catalog, text_encoder, encoder, only=only,
                              limits=ImageLimits(v.image_timeout_s, v.max_image_bytes, v.max_image_pixels),
                              batch_size=settings.image_encoder.batch_size, hubness=encoder.hubness,
                              progress=not args.no_progress)
    metrics = {**result.metrics, "products_from": str(source) if source else None}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    (args.out / "report.html").write_text(result.report_html, encoding="utf-8")
    t2i, chance = metrics["text_to_image"], metrics["chance"]
    raw = metrics.get("text_to_image_uncorrected")
    uncorrected = f" (without the hubness correction: {_fmt(raw)})" if raw else ""
    print(f"{metrics['products']} products: text→image {_fmt(t2i)}{uncorrected}; image→text "
          f"{_fmt(metrics['image_to_text'])}; chance {_fmt(chance)}; wrote {args.out}/metrics.json and report.html")
    return 0


def _fmt(figures: Any) -> str:
    return ", ".join(f"{k} {v:.3f}" for k, v in figures.items())
