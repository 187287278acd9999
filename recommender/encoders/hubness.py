"""Hubness correction for text→image search, applied when serving (calibrated by ``recommender.alignment.hubness``).

In a learned cross-modal space some images ("hubs") sit close to very many titles and crowd the top of
every result list, pushing the right image down. CSLS (Conneau et al., 2018) corrects for it: each image's
text→image score loses ``weight ×`` its mean cosine to its ``k`` nearest *reference titles*. The reference is
a sample of the training products' title vectors, saved with the checkpoint, so an image's penalty depends
only on its own vector: it is computed once when the image is vectorized and stored beside the vector, and
search subtracts it from the ``text->image`` cosine of the candidates it re-ranks. The weight is chosen on
the training run's validation split (0 when the correction does not help there).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recommender.errors import EncoderError

HUBNESS_FILE = "hubness.safetensors"


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
