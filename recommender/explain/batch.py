"""The parts of a page's evidence computed for all its items at once, each equal to its per-item form bit for bit,
and which of the shopper's recent products an item resembles.

``list_evidence`` builds ~10 items' evidence per request; rounding their signals and the text/image cosines to
the shopper's recent products one value at a time cost more than the rest of the explanation (profiled).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import TypeVar

import numpy as np

from recommender.domain import ItemView
from recommender.ranking.features import shared_category_depth
from recommender.ranking.rounding import round_floats

CLOSENESS_VECTORS = ("text", "image")  # a history product resembles an item by the larger of these cosines
HISTORY_MATCH_MIN_COS = 0.6  # a history product "resembles" the item at this text/image cosine or more
MAX_HISTORY_MATCHES = 2
T = TypeVar("T")


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


def history_matches(item: ItemView, history: Sequence[ItemView], close: Sequence[float],
                    facts: Sequence[T]) -> tuple[T, ...]:
    """The history products (``facts`` of each) the item resembles, closest first (``close``: each one's
    ``closeness`` to the item): same variant, then rounded closeness, shared category depth, product id."""
    if not history:
        return ()
    scored = []
    pid, variant, category = item.product_id, item.variant_group, tuple(item.category)
    for j, (h, cos) in enumerate(zip(history, close, strict=True)):
        if h.product_id == pid:
            continue
        same_variant = bool(h.variant_group) and h.variant_group == variant
        # shared_category_depth(...) == 1.0 exactly when both paths are non-empty and equal: the cheap test first
        if same_variant or cos >= HISTORY_MATCH_MIN_COS or (category and tuple(h.category) == category):
            # the sort key itself (no key function); the position j last keeps equal keys in history order
            scored.append((not same_variant, -round(cos, 4), -_category_depth(tuple(h.category), category),
                           h.product_id, j))
    scored.sort()
    return tuple(facts[t[-1]] for t in scored[:MAX_HISTORY_MATCHES])


@lru_cache(maxsize=4096)  # a pure function of two paths; a shop has few, compared again on every page
def _category_depth(a: tuple[str, ...], b: tuple[str, ...]) -> float:
    """``shared_category_depth`` of two category paths, cached (a page compares each history path per item)."""
    return shared_category_depth(a, b)


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
