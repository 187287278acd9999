"""The parts of a page's evidence computed for all its items at once, each equal to its per-item form bit for bit.

``list_evidence`` builds ~10 items' evidence per request; rounding their signals and the text/image cosines to
the shopper's recent products one value at a time cost more than the rest of the explanation (profiled).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache

import numpy as np

from recommender.domain import ItemView
from recommender.ranking.rounding import round_floats

CLOSENESS_VECTORS = ("text", "image")  # a history product resembles an item by the larger of these cosines


def cosine(a: ItemView, b: ItemView, name: str) -> float:
    """The dot product of the two products' ``name`` vectors (unit vectors: their cosine); 0 when one lacks it."""
    va, vb = a.vectors.get(name), b.vectors.get(name)
    return float(np.dot(va, vb)) if va is not None and vb is not None else 0.0


def closeness(h: ItemView, item: ItemView) -> float:
    """How close history product ``h`` is to ``item``: its larger text/image cosine."""
    return max(cosine(h, item, name) for name in CLOSENESS_VECTORS)


def history_closeness(items: Sequence[ItemView], history: Sequence[ItemView]) -> list[list[float]]:
    """``closeness(h, item)`` for each item (outer) and history product (inner), a few numpy calls per page."""
    if not history:  # a shopper without recent products (or an anonymous page): nothing to compare
        return [[] for _ in items]
    text, image = (_cosines(items, history, name) for name in CLOSENESS_VECTORS)
    return np.where(image > text, image, text).tolist()  # max(text, image), NaN and -0.0 included


def _cosines(items: Sequence[ItemView], history: Sequence[ItemView], name: str) -> np.ndarray:
    """``cosine(h, item, name)`` per item and history product, as float64. ``np.vecdot`` runs the very dot kernel
    of ``np.dot`` on each pair (a matrix product would sum in another order, so round(cos, 4) could differ)."""
    left = [v.vectors.get(name) for v in items]
    right = [h.vectors.get(name) for h in history]
    if left and right and _stackable([*left, *right]):
        return np.vecdot(np.array(left)[:, None, :], np.array(right)[None, :, :]).astype(np.float64)
    # a vector missing, or mixed types or shapes: pair by pair, with np.dot's own promotion
    return np.array([[cosine(h, item, name) for h in history] for item in items], dtype=np.float64)


def _stackable(vectors: Sequence[object]) -> bool:
    """True when all are 1-d float ndarrays of one dtype object and length (then vecdot's pairs are np.dot's)."""
    first = vectors[0]  # a missing vector (None) fails the checks below
    if type(first) is not np.ndarray or first.ndim != 1 or first.dtype not in (np.float32, np.float64):
        return False
    dtype, shape = first.dtype, first.shape
    return all(type(v) is np.ndarray and v.dtype is dtype and v.shape == shape for v in vectors)


def rounded_signals(signals: Sequence[Mapping[str, float]]) -> list[tuple[tuple[str, float], ...]]:
    """Each item's signals sorted by name, values as ``round(float(v), 5)``: what ``Evidence.signals`` holds."""
    names = [_sorted_names(tuple(s)) for s in signals]
    values = np.array([s[k] for s, keys in zip(signals, names, strict=True) for k in keys], dtype=np.float64)
    flat, out, start = round_floats(values, 5), [], 0
    for keys in names:
        out.append(tuple(zip(keys, flat[start:start + len(keys)], strict=True)))
        start += len(keys)
    return out


@lru_cache(maxsize=256)  # pages share a few sets of signal names (one per ranker): each is sorted once
def _sorted_names(names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(sorted(names))
