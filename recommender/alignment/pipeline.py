"""The train-image-encoder job as a library call: read pairs → (hold out) → train → save a checkpoint.

Training is skipped when ``out/current`` was trained on the same data (hash) with the same config and
held-out share: retraining would only reproduce it (``force=True`` retrains anyway).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from recommender.alignment.checkpoint import save_checkpoint
from recommender.alignment.data import load_pairs, split_rows
from recommender.alignment.train import TrainConfig, TrainResult, train
from recommender.catalog.images import ImageLimits
from recommender.encoders.base import Encoder
from recommender.encoders.checkpoint import CURRENT, MANIFEST


@dataclass(frozen=True)
class TrainJobSummary:
    """What the job did and how long each stage took (``result`` is None when training was skipped)."""

    checkpoint: Path
    pairs: int
    held_out: int
    image_problems: tuple[tuple[str, str], ...]
    result: TrainResult | None
    read_s: float
    train_s: float
    save_s: float
    data_hash: str = ""

    @property
    def skipped(self) -> bool:
        """True when the current checkpoint already matched the data and config (nothing trained)."""
        return self.result is None

    def line(self) -> str:
        """One-line human summary with per-stage timing."""
        read = f"read {self.pairs} pairs in {self.read_s:.0f} s ({len(self.image_problems)} without image"
        if self.result is None:
            return (f"unchanged, skipping: {self.checkpoint} was trained on the same data (hash {self.data_hash}) "
                    f"with the same config; {read}); --force retrains")
        return (f"{self.result.line()}; {read}, {self.held_out} held out), "
                f"saved {self.checkpoint} in {self.save_s:.1f} s")


def training_key(data_hash: str, config: TrainConfig, holdout_fraction: float) -> dict[str, Any]:
    """What decides a checkpoint's weights: the data, the training config and the held-out share."""
    return json.loads(json.dumps({"hash": data_hash, "config": asdict(config), "holdout_fraction": holdout_fraction}))


def unchanged_checkpoint(out: Path, key: dict[str, Any]) -> Path | None:
    """The version ``out/current`` points at when its manifest was trained with ``key``, else None."""
    manifest = out / CURRENT / MANIFEST
    try:
        m = json.loads(manifest.read_text(encoding="utf-8"))
        found = {"hash": m["data"]["hash"], "config": m["config"], "holdout_fraction": m["data"]["holdout_fraction"]}
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return (out / CURRENT).resolve() if found == key else None


def train_image_encoder(catalog: Path, out: Path, text_encoder: Encoder[str], config: TrainConfig, *,
                        holdout_fraction: float = 0.0, limits: ImageLimits | None = None, force: bool = False,
                        progress: bool = True) -> TrainJobSummary:
    """Train a tower on ``catalog`` (minus a seeded held-out share of products, listed in the manifest for
    evaluations on products the tower never saw) and publish it as ``out/current``; skip when unchanged."""
    t0 = time.perf_counter()
    pairs = load_pairs(catalog, text_encoder, config.image_size, limits=limits, progress=progress)
    keep, held = split_rows(len(pairs), holdout_fraction, config.seed)
    held_ids = sorted(pairs.product_ids[i] for i in held)
    t1 = time.perf_counter()
    key = training_key(pairs.data_hash, config, holdout_fraction)
    current = None if force else unchanged_checkpoint(out, key)
    if current is not None:
        return TrainJobSummary(current, len(pairs), len(held), pairs.problems, None, t1 - t0, 0.0, 0.0, pairs.data_hash)
    result = train(pairs.subset(keep), config, progress=progress)
    t2 = time.perf_counter()
    info = {"text_encoder": {"identity": text_encoder.identity, "dim": int(pairs.texts.shape[1])},
            "data": {"catalog": str(catalog), "hash": pairs.data_hash, "pairs": len(pairs),
                     "train": result.train_size, "val": result.val_size, "holdout_fraction": holdout_fraction,
                     "holdout_product_ids": held_ids, "without_image": len(pairs.problems)},
            "config": asdict(config), **result.summary()}
    version = save_checkpoint(out, result.model, result.spec, info,
                              result.hubness.correction if result.hubness else None)
    t3 = time.perf_counter()
    return TrainJobSummary(version, len(pairs), len(held), pairs.problems, result, t1 - t0, t2 - t1, t3 - t2,
                           pairs.data_hash)
