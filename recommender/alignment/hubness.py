"""Hubness correction for text→image search, calibrated when the image tower is trained.

In a learned cross-modal space some images ("hubs") sit close to very many titles and crowd the top of
every result list, pushing the right image down. CSLS (Conneau et al., 2018) corrects for it: each image's
text→image score loses ``weight ×`` its mean cosine to its ``k`` nearest *reference titles*. The reference is
a sample of the training products' title vectors, saved with the checkpoint, so an image's penalty depends
only on its own vector: it is computed once when the image is vectorized and stored beside the vector, and
search subtracts it from the ``text->image`` cosine of the candidates it re-ranks. The weight is chosen on
the training run's validation split (0 when the correction does not help there).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recommender.errors import EncoderError
from recommender.evaluation.search_eval import own_item_figures

HUBNESS_FILE = "hubness.safetensors"
DEFAULT_K = 10
WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
MAX_REFERENCE = 4096  # titles kept as the reference: bounds the checkpoint size and the per-image cost


def neighbourhood(images: np.ndarray, reference: np.ndarray, k: int) -> np.ndarray:
    """Mean cosine of each (unit) image vector to its ``k`` nearest (unit) reference vectors."""
    if len(images) == 0:
        return np.zeros(0, dtype=np.float32)
    k = max(1, min(k, len(reference)))
    sims = np.asarray(images, dtype=np.float32) @ np.asarray(reference, dtype=np.float32).T
    return np.partition(sims, -k, axis=1)[:, -k:].mean(axis=1)


@dataclass(frozen=True, eq=False)  # eq=False: == on the numpy reference is ambiguous
class HubnessCorrection:
    """What to subtract from a text query's cosine with an image vector: ``weight × neighbourhood(image)``."""

    reference: np.ndarray  # R×D unit title vectors of training products
    k: int
    weight: float

    def penalty(self, images: np.ndarray) -> np.ndarray:
        """The penalty of each image vector (all 0 when the weight is 0)."""
        if self.weight == 0 or len(images) == 0:
            return np.zeros(len(images), dtype=np.float32)
        return (self.weight * neighbourhood(images, self.reference, self.k)).astype(np.float32)

    def manifest(self) -> dict[str, Any]:
        """The manifest entry describing it (the vectors go to ``HUBNESS_FILE``)."""
        return {"file": HUBNESS_FILE, "k": self.k, "weight": self.weight, "reference_titles": len(self.reference)}


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


def load_correction(folder: Path, manifest: dict[str, Any]) -> HubnessCorrection | None:
    """The checkpoint's correction, or None when it has none; EncoderError naming the file when unreadable."""
    entry = manifest.get("hubness")
    if not isinstance(entry, dict):
        return None
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    file = folder / str(entry.get("file", HUBNESS_FILE))
    try:
        reference = load_file(str(file))["reference"]
        k, weight = int(entry["k"]), float(entry["weight"])
    except FileNotFoundError as exc:
        raise EncoderError(f"image encoder hubness reference not found: {file}") from exc
    except (SafetensorError, OSError, ValueError, KeyError, TypeError) as exc:
        raise EncoderError(f"image encoder hubness reference {file} is corrupt: {exc}") from exc
    if reference.ndim != 2 or k < 1 or not np.isfinite(weight):
        raise EncoderError(f"image encoder hubness reference {file} is malformed (shape {reference.shape}, "
                           f"k {k}, weight {weight})")
    return HubnessCorrection(reference.astype(np.float32), k, weight)
