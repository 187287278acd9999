"""Calibrating the hubness correction (``recommender.encoders.hubness``) when the image tower is trained: the
reference titles and the weight that ranks the validation titles' own images best."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recommender.encoders.hubness import HUBNESS_FILE, HubnessCorrection, neighbourhood
from recommender.evaluation.metrics import own_item_figures

DEFAULT_K = 10
WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
MAX_REFERENCE = 4096  # titles kept as the reference: bounds the checkpoint size and the per-image cost


@dataclass(frozen=True)
class Calibration:
    """The chosen correction and the validation MRR of every weight tried (for the manifest)."""

    correction: HubnessCorrection
    mrr_by_weight: dict[str, float]


def reference_sample(titles: np.ndarray, seed: int, limit: int = MAX_REFERENCE) -> np.ndarray:
    """At most ``limit`` title vectors, a seeded sample when there are more."""
    if len(titles) <= limit:
        return np.asarray(titles, dtype=np.float32)
    rows = np.sort(np.random.default_rng(seed).choice(len(titles), limit, replace=False))
    return np.asarray(titles[rows], dtype=np.float32)


def calibrate(val_images: np.ndarray, val_titles: np.ndarray, reference: np.ndarray, *, k: int = DEFAULT_K,
              weights: Sequence[float] = WEIGHTS) -> Calibration:
    """The weight whose corrected text→image scores rank each validation title's own image best (MRR).

    Ties go to the smaller weight, so a correction that does not help is switched off (weight 0).
    """
    near = neighbourhood(val_images, reference, k)
    mrr = {w: own_item_figures(val_titles, val_images, penalty=w * near).mrr for w in weights}
    best = max(weights, key=lambda w: (round(mrr[w], 6), -w))
    return Calibration(HubnessCorrection(reference, k, float(best)), {f"{w:g}": round(mrr[w], 4) for w in weights})


def save_reference(folder: Path, correction: HubnessCorrection) -> None:
    """Write the reference titles to ``folder/HUBNESS_FILE``."""
    from safetensors.numpy import save_file

    save_file({"reference": np.ascontiguousarray(correction.reference, dtype=np.float32)},
              str(folder / HUBNESS_FILE))
