"""The one interface every encoder implements, and the helpers every encoder shares (no torch here)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np

T_contra = TypeVar("T_contra", contravariant=True)


class Encoder(Protocol[T_contra]):
    """Turns a batch of inputs into vectors.

    Contract:
    - ``encode_batch(items)`` returns a float32 array of shape ``(len(items), dim)`` whose rows have
      unit L2 norm (cosine similarity = dot product), in input order; an empty batch gives ``(0, dim)``.
    - Deterministic: the same input gives the same vector within float tolerance (bf16 weights: cosine above
      0.9999 whichever batch the input shares, as padding changes the rounding).
    - ``identity`` names everything that can change the output (model, weights, preprocessing);
      stored fingerprints include it, so changing it re-encodes the catalog and nothing else does.
    - Loading heavy weights is lazy: constructing an encoder is cheap.
    """

    @property
    def identity(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def encode_batch(self, items: Sequence[T_contra]) -> np.ndarray: ...


def l2_normalize(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, as float32; zero rows stay zero instead of becoming NaN."""
    m = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return (m / np.where(norms == 0, 1.0, norms)).astype(np.float32)


def text_space(identity: str) -> str:
    """The embedding space of a text encoder identity: its model, without the options after ``|`` (number
    format, length limit) that move vectors only slightly, so an image tower aligned to one fits the others."""
    return identity.split("|", 1)[0]


def file_digest(path: Path) -> str:
    """Short sha256 of a file, naming a checkpoint's exact weights in the encoder identity."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]
