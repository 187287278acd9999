"""A bounded read-through cache of ItemViews (properties + named vectors) over the product store.

Ranking needs the vectors of the anchor, of every candidate and of the shopper's history; fetching them
per request in one batch, and keeping the hot ones, is what keeps the recommendation path fast.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any, Protocol

import numpy as np

from recommender.caching import BoundedDict
from recommender.domain import BEHAVIOUR_VECTOR, CATEGORY_SEPARATOR, ItemView


class ItemSource(Protocol):
    """Where items come from (the ProductStore): properties and vectors of many products at once."""

    def items(self, product_ids: list[str]) -> Mapping[str, tuple[dict[str, Any], dict[str, np.ndarray]]]: ...


class ItemLookup(Protocol):
    """Read access to ItemViews: what retrieval and ranking depend on (an ItemCache, or an overlay of one)."""

    def get_many(self, product_ids: Iterable[str]) -> dict[str, ItemView]: ...

    def get(self, product_id: str) -> ItemView | None: ...


def item_view(props: Mapping[str, Any], vectors: Mapping[str, np.ndarray]) -> ItemView:
    """An ItemView from stored properties and vectors."""
    category = tuple(c for c in str(props.get("category") or "").split(CATEGORY_SEPARATOR) if c)
    price = props.get("price")
    return ItemView(
        product_id=str(props["product_id"]), vectors=dict(vectors), category=category,
        price=float(price) if price is not None else None,
        variant_group=str(props.get("variant_group") or props["product_id"]),
        in_stock=bool(props.get("in_stock", True)), title=str(props.get("title") or ""),
        color=str(props.get("color") or ""), image=str(props.get("image") or ""),
        attributes=_attributes(props.get("attributes_json")))


def _attributes(raw: Any) -> tuple[tuple[str, str], ...]:
    try:
        values = json.loads(raw) if raw else {}
    except ValueError:
        return ()
    return tuple(sorted((str(k), str(v)) for k, v in values.items() if k != "variant_group" and v))


# views kept nearer than the store (the served release's snapshot): the ones it has among the ids asked for
ResidentViews = Callable[[list[str]], Mapping[str, ItemView]]


class ItemCache:
    """LRU of ItemViews; misses are taken from ``resident`` when given, the rest fetched from the source in one batch.
    Thread-safe."""

    def __init__(self, source: ItemSource, max_items: int = 50_000, resident: ResidentViews | None = None) -> None:
        self._source = source
        self._resident = resident
        self._max = max_items
        self._items: OrderedDict[str, ItemView] = OrderedDict()
        self._lock = threading.Lock()

    def get_many(self, product_ids: Iterable[str]) -> dict[str, ItemView]:
        """The known products among ``product_ids`` (unknown ones are absent from the result)."""
        wanted = list(dict.fromkeys(product_ids))
        with self._lock:
            get = self._items.get
            found = {pid: view for pid in wanted if (view := get(pid)) is not None}
            deque(map(self._items.move_to_end, found), maxlen=0)  # each hit to the recent end, in C
        missing = [pid for pid in wanted if pid not in found]
        fetched = dict(self._resident(missing)) if missing and self._resident is not None else {}
        missing = [pid for pid in missing if pid not in fetched]
        if missing:
            fetched.update((pid, item_view(p, v)) for pid, (p, v) in self._source.items(missing).items())
        if fetched:
            with self._lock:
                for pid, view in fetched.items():
                    self._items[pid] = view
                while len(self._items) > self._max:
                    self._items.popitem(last=False)
            found.update(fetched)
        return found

    def get(self, product_id: str) -> ItemView | None:
        """One product, or None if the store does not have it."""
        return self.get_many([product_id]).get(product_id)

    def clear(self) -> None:
        """Forget everything (after a new model version or catalog refresh)."""
        with self._lock:
            self._items.clear()


class BehaviourOverlay:
    """Item views whose ``behavior`` vector comes from a given set (a loaded ALS model's), not the store's.

    The store's ``behavior`` vectors are rewritten after a model is published; ranking with the model's own
    vectors keeps a request consistent with the model version it ranks with, and lets evaluation use its own fit.
    """

    def __init__(self, base: ItemLookup, vectors: Mapping[str, np.ndarray], max_items: int = 50_000) -> None:
        self._base = base
        self._vectors = vectors
        # overlaid views, reused while the base hands out the same view object (a ranking asks for ~200 per request)
        self._made: BoundedDict[str, tuple[ItemView, ItemView]] = BoundedDict(max_items)

    def get(self, product_id: str) -> ItemView | None:
        """One view (None if unknown)."""
        return self.get_many([product_id]).get(product_id)

    def get_many(self, product_ids: Iterable[str]) -> dict[str, ItemView]:
        """Views from the base lookup with the overlay's behaviour vectors (none for items it lacks)."""
        out = {}
        kept = self._made.get
        for pid, view in self._base.get_many(product_ids).items():
            made = kept(pid)
            if made is None or made[0] is not view:
                made = self._made.put(pid, (view, self._overlay(pid, view)))
            out[pid] = made[1]
        return out

    def _overlay(self, pid: str, view: ItemView) -> ItemView:
        vectors = {k: v for k, v in view.vectors.items() if k != BEHAVIOUR_VECTOR}
        if pid in self._vectors:
            vectors[BEHAVIOUR_VECTOR] = self._vectors[pid]
        return replace(view, vectors=vectors)
