"""The train-image-encoder job as a library call: read pairs → (hold out) → train → save a checkpoint."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

from recommender.alignment.checkpoint import save_checkpoint
from recommender.alignment.data import load_pairs, split_rows
from recommender.alignment.train import TrainConfig, TrainResult, train
from recommender.encoders.base import Encoder
from recommender.images import ImageLimits


@dataclass(frozen=True)
class TrainJobSummary:
    """What the job did and how long each stage took."""

    checkpoint: Path
    pairs: int
    held_out: int
    image_problems: tuple[tuple[str, str], ...]
    result: TrainResult
    read_s: float
    train_s: float
    save_s: float

    def line(self) -> str:
        """One-line human summary with per-stage timing."""
        return (f"{self.result.line()}; read {self.pairs} pairs in {self.read_s:.0f} s "
                f"({len(self.image_problems)} without image, {self.held_out} held out), "
                f"saved {self.checkpoint} in {self.save_s:.1f} s")


def train_image_encoder(catalog: Path, out: Path, text_encoder: Encoder[str], config: TrainConfig, *,
                        holdout_fraction: float = 0.0, limits: ImageLimits | None = None,
                        progress: bool = True) -> TrainJobSummary:
    """Train a tower on ``catalog`` (minus a seeded held-out share of products, listed in the manifest for
    evaluations on products the tower never saw) and publish it as ``out/current``."""
    t0 = time.perf_counter()
    pairs = load_pairs(catalog, text_encoder, config.image_size, limits=limits, progress=progress)
    keep, held = split_rows(len(pairs), holdout_fraction, config.seed)
    held_ids = sorted(pairs.product_ids[i] for i in held)
    t1 = time.perf_counter()
    result = train(pairs.subset(keep), config, progress=progress)
    t2 = time.perf_counter()
    info = {"text_encoder": {"identity": text_encoder.identity, "dim": int(pairs.texts.shape[1])},
            "data": {"catalog": str(catalog), "hash": pairs.data_hash, "pairs": len(pairs),
                     "train": result.train_size, "val": result.val_size, "holdout_fraction": holdout_fraction,
                     "holdout_product_ids": held_ids, "without_image": len(pairs.problems)},
            "config": asdict(config), **result.summary()}
    version = save_checkpoint(out, result.model, result.spec, info)
    t3 = time.perf_counter()
    return TrainJobSummary(version, len(pairs), len(held), pairs.problems, result, t1 - t0, t2 - t1, t3 - t2)
