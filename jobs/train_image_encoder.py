"""`recsys train-image-encoder`: teach an open_clip vision tower to map product images into the text space."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from recommender import components
from recommender.alignment.pipeline import train_image_encoder
from recommender.alignment.train import TrainConfig
from recommender.catalog.images import image_limits
from recommender.config import Settings

MAX_LISTED = 20


def add_parser(sub: Any) -> None:
    """Register the subcommand."""
    d = TrainConfig()
    p = sub.add_parser("train-image-encoder",
                       help="train (or fine-tune) the image encoder on a catalog's (image, text) pairs")
    p.add_argument("--catalog", type=Path, required=True, help="catalog folder (DATA.md format)")
    p.add_argument("--out", type=Path, help="checkpoint root (default: <data_dir>/models/image-encoder)")
    p.add_argument("--model", help=f"open_clip model name (default: {d.model})")
    p.add_argument("--pretrained", help="open_clip pretrained tag or local weights file to fine-tune")
    p.add_argument("--image-size", type=int, default=d.image_size, help="pixels per side")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr, help="peak learning rate (warmup, then cosine)")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--text-target", choices=("title", "full", "both"), default=d.text_target,
                   help="text vectors the images learn to match: the title, the full product text, or both")
    p.add_argument("--target-temperature", type=float, default=d.target_temperature,
                   help="> 0: soft targets from text-text similarity (near-duplicate titles share credit)")
    p.add_argument("--min-crop-scale", type=float, default=d.min_crop_scale,
                   help="augmentation: smallest random crop, as a share of the image area (1 = no crop)")
    p.add_argument("--max-rotate", type=float, default=d.max_rotate_deg, help="augmentation: largest rotation, degrees")
    p.add_argument("--ema-decay", type=float, default=d.ema_decay,
                   help="keep a moving average of the weights with this decay (0 = the raw weights)")
    p.add_argument("--attribute-weight", type=float, default=d.attribute_weight,
                   help="weight of the category/colour classification heads during training (0 = none)")
    p.add_argument("--hubness-k", type=int, default=d.hubness_k,
                   help="calibrate the text→image hubness correction with this many nearest reference titles "
                        "(0 = no correction)")
    p.add_argument("--val-fraction", type=float, default=d.val_fraction, help="share held out for validation")
    p.add_argument("--holdout-fraction", type=float, default=0.0,
                   help="share of products never trained on (ids written to the manifest, for evaluate-search)")
    p.add_argument("--max-minutes", type=float, default=d.max_minutes, help="time limit (0 = none)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--force", action="store_true",
                   help="retrain even when the current checkpoint has the same data hash and training config")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace, settings: Settings) -> TrainConfig:
    """The training config: CLI flags over the defaults (pretrained/model from settings when not given)."""
    model = args.model or (settings.image_encoder.model if settings.image_encoder.pretrained else TrainConfig.model)
    return replace(TrainConfig(), model=model, pretrained=args.pretrained or settings.image_encoder.pretrained,
                   image_size=args.image_size, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                   weight_decay=args.weight_decay, text_target=args.text_target,
                   target_temperature=args.target_temperature, min_crop_scale=args.min_crop_scale,
                   max_rotate_deg=args.max_rotate, ema_decay=args.ema_decay, val_fraction=args.val_fraction,
                   attribute_weight=args.attribute_weight, hubness_k=args.hubness_k,
                   max_minutes=args.max_minutes, seed=args.seed,
                   threads=settings.image_encoder.threads or TrainConfig.threads)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Train, save a versioned checkpoint, point ``current`` at it, print the summary (exit 0 also when the
    current checkpoint already matches the data and config and training is skipped)."""
    out = args.out or components.image_encoder_dir(settings)
    v = settings.vectorize
    summary = train_image_encoder(args.catalog, out, components.text_encoder(settings),
                                  config_from_args(args, settings),
                                  holdout_fraction=args.holdout_fraction, force=args.force,
                                  limits=image_limits(v),
                                  progress=not args.no_progress)
    for pid, why in summary.image_problems[:MAX_LISTED]:
        print(f"no image for {pid}: {why}", file=sys.stderr)
    print(summary.line())
    return 0
