"""Deterministic randomness for the synthetic shop: one seeded stream per purpose, fast buffered draws."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import TypeVar

import numpy as np

T = TypeVar("T")


class Draws:
    """Buffered uniform draws from one numpy Generator: fast scalar choices, still deterministic."""

    def __init__(self, rng: np.random.Generator, block: int = 8192) -> None:
        self._rng, self._block = rng, block
        self._buf: list[float] = []
        self._pos = 0

    def u(self) -> float:
        """One uniform draw in [0, 1)."""
        if self._pos >= len(self._buf):
            self._buf, self._pos = self._rng.random(self._block).tolist(), 0
        self._pos += 1
        return self._buf[self._pos - 1]

    def index(self, n: int) -> int:
        """A uniform index in ``range(n)``."""
        return min(int(self.u() * n), n - 1)

    def pick(self, items: Sequence[T]) -> T:
        """A uniformly chosen item."""
        return items[self.index(len(items))]

    def chance(self, p: float) -> bool:
        """True with probability ``p``."""
        return self.u() < p

    def weighted(self, cumulative: Sequence[float]) -> int:
        """An index drawn with the weights whose running sum is ``cumulative``."""
        i = bisect.bisect_right(cumulative, self.u() * cumulative[-1])
        return min(i, len(cumulative) - 1)


def cumsum(weights: Sequence[float] | np.ndarray) -> list[float]:
    """Running sums of weights, as a plain list (for bisect)."""
    return np.cumsum(np.asarray(weights, dtype=np.float64)).tolist()


def stream_rng(seed: int, *stream: int) -> np.random.Generator:
    """An independent generator for one named stream of one seed."""
    return np.random.default_rng(np.random.SeedSequence([seed, *stream]))


def id_width(n: int, minimum: int) -> int:
    """Digits of a zero-padded id for ``n`` items (at least ``minimum``)."""
    return max(minimum, len(str(n)))
