"""`recsys train-sequence`: SASRec on a catalog's events, saved (safetensors + JSON) and published under
``<data_dir>/models/sequence`` (``recommender.tuning.run``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from recommender import components
from recommender.config import Settings
from recommender.sequence.model import SasrecConfig
from recommender.tuning.run import SequenceTrainOptions


def add_parser(sub: Any) -> None:
    """Register the subcommand."""
    d = SasrecConfig()
    p = sub.add_parser("train-sequence", help="train the SASRec sequence model (early-stopped on validation)")
    p.add_argument("--catalog", type=Path, required=True)
    p.add_argument("--events", type=Path, help="default: the catalog's events file")
    p.add_argument("--max-epochs", type=int, default=d.max_epochs)
    p.add_argument("--patience", type=int, default=d.patience)
    p.add_argument("--dropout", type=float, default=d.dropout)
    p.add_argument("--lr", type=float, default=d.lr, help="Adam learning rate")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="shoppers per step")
    p.add_argument("--max-len", type=int, default=d.max_len, help="most recent items the model reads")
    p.add_argument("--negatives", type=int, default=d.negatives, help="sampled softmax negatives (0 = all items)")
    p.add_argument("--threads", type=int, default=d.threads)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Train, save, print the summary."""
    config = SasrecConfig(max_epochs=args.max_epochs, patience=args.patience, dropout=args.dropout, lr=args.lr,
                          batch_size=args.batch_size, max_len=args.max_len, negatives=args.negatives,
                          threads=args.threads)
    out = components.train_sequence(SequenceTrainOptions(args.catalog, args.events, config, not args.no_progress),
                                    settings)
    print(f"train-sequence: version {out['version']} best epoch {out['best_epoch']}/{out['epochs']} "
          f"valid NDCG@10 {out['valid_ndcg@10']:.4f} | users={out['users']} items={out['items']} "
          f"rejected={out['rejected_events']} {out['seconds']:.1f}s")
    return 0
