"""What one app instance holds between requests: the settings, one store connection, lazily loaded encoders.

Lives in ``app.extensions["recsys"]`` (no import-time globals). The store connects on first use; when a call
finds Weaviate unreachable the connection is dropped, so the next request reconnects once Weaviate is back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
from flask import Flask, current_app
from PIL import Image

from api.warmup import Warmup, refreeze_heap
from recommender import components
from recommender.ask.retrieval import Encoders
from recommender.ask.service import AskService
from recommender.config import Settings
from recommender.domain import Product, ProductFilter
from recommender.errors import StoreUnavailable
from recommender.events.backend import EventLogs
from recommender.explain.cache import ExplanationService, open_explanation_service
from recommender.ranking.service import RecommendationService
from recommender.search.searcher import QueryEncoders
from recommender.store.products import ProductStore
from recommender.store.schema import VECTOR_NAMES, Hit

EXTENSION = "recsys"


class AppState:
    """Per-app resources: settings, a reconnecting ProductStore and the query encoders."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.encoders = QueryEncoders(lambda: components.text_encoder(settings),
                                      lambda: components.image_encoder(settings))
        self._store: ProductStore | None = None
        self._retired: list[tuple[threading.Timer, ProductStore]] = []  # dropped stores, closed after a grace time
        self.events = EventLogs(settings.events, settings.data_dir)  # PostgreSQL: this worker's pool, made on first use
        self._lock = threading.Lock()
        self._recommendations: RecommendationService | None = None
        self._explanations: ExplanationService | None = None
        self._ask: AskService | None = None
        self.warmup: Warmup | None = None  # set when ``api.warmup`` is on

    @contextmanager
    def store(self) -> Iterator[ProductStore]:
        """The shared store (connecting if needed); dropped when a call inside finds Weaviate unreachable."""
        with self._lock:
            if self._store is None:
                self._store = ProductStore.open(self.settings.weaviate)
            store = self._store
        try:
            yield store
        except StoreUnavailable:
            self.reset(store, grace=True)
            raise

    def recommendations(self) -> RecommendationService:
        """The recommendation service (built on first use; it never loads the query encoders)."""
        with self._lock:
            if self._recommendations is None:
                self._recommendations = RecommendationService(ReconnectingStore(self), self.settings.data_dir,
                                                              self.settings.ranking, self.events,
                                                              on_switch=refreeze_heap)
            return self._recommendations

    def explanations(self) -> ExplanationService:
        """The explanation service ``[explain]`` configures (built on first use)."""
        with self._lock:
            if self._explanations is None:
                self._explanations = open_explanation_service(self.settings.explain, self.settings.data_dir)
            return self._explanations

    def ask(self) -> AskService:
        """The ask service (built on first use: reads the vocabulary; encoders still load lazily). Built outside
        the lock, since gathering a missing vocabulary goes through ``store()``, which takes it."""
        with self._lock:
            if self._ask is not None:
                return self._ask
        store = ReconnectingStore(self)
        vocabulary = components.load_vocabulary(self.settings, store.iter_records)
        encoders = Encoders(lambda: self.encoders.get("text"), lambda: self.encoders.get("image"))
        related = components.related_products(self.recommendations(), self.settings.ranking.max_k)
        built = components.ask_service(self.settings, store, encoders, vocabulary, related)
        with self._lock:
            if self._ask is None:
                self._ask = built
            current = self._ask
        if current is not built:  # another request built one first
            built.close()
        return current

    def warmup_steps(self) -> dict[str, Callable[[], object]]:
        """What a worker loads before it reports ready: both encoders (one dummy input each, so lazy weights and
        kernels load too), the recommendation service and the ask service with its vocabulary."""
        return {"text_encoder": lambda: self.encoders.warm("text", ["warm-up query"]),
                "image_encoder": lambda: self.encoders.warm("image", [Image.new("RGB", (64, 64), "white")]),
                "recommendations": self.recommendations,
                "ask": self.ask}

    def is_ready(self) -> bool:
        """True when Weaviate answers its readiness probe; drops the connection when it does not."""
        try:
            with self.store() as store:
                if store.is_ready():
                    return True
                self.reset(store, grace=True)
                return False
        except StoreUnavailable:
            return False

    def reset(self, store: ProductStore | None = None, grace: bool = False) -> None:
        """Forget the connection (only if it is still ``store``, when given) and close it: at once, or with ``grace``
        once the calls other requests started on it have had their deadline (closing it under them would fail
        them too, though their node may answer)."""
        with self._lock:
            if self._store is None or (store is not None and self._store is not store):
                return
            old, self._store = self._store, None
            if grace:
                timer = threading.Timer(self.settings.weaviate.query_timeout_s + 1.0, self._close_retired, [old])
                timer.daemon = True
                self._retired.append((timer, old))
                timer.start()
                return
        old.close()

    def _close_retired(self, store: ProductStore) -> None:
        with self._lock:
            self._retired = [(t, s) for t, s in self._retired if s is not store]
        store.close()

    def close(self) -> None:
        """Release the store connection (and any still in their grace time), the event log's pool and the explanation
        components."""
        self.reset()
        with self._lock:
            retired, self._retired = self._retired, []
        for timer, old in retired:  # their timers have not closed them yet
            timer.cancel()
            old.close()
        self.events.close()
        if self._explanations is not None:
            self._explanations.close()
            self._explanations = None
        if self._ask is not None:
            self._ask.close()
            self._ask = None


class ReconnectingStore:
    """The store calls the recommendation service makes, each through ``AppState.store()`` (so it reconnects)."""

    def __init__(self, app_state: AppState) -> None:
        self._state = app_state

    def items(self, product_ids: list[str]) -> Mapping[str, tuple[dict[str, Any], dict[str, np.ndarray]]]:
        """Properties and vectors of products."""
        with self._state.store() as store:
            return store.items(product_ids)

    def near_vector(self, vector: np.ndarray, target: str, k: int = 10, filters: ProductFilter | None = None,
                    properties: Sequence[str] | None = None) -> list[Hit]:
        """Near-vector query on one named vector."""
        with self._state.store() as store:
            return store.near_vector(vector, target, k, filters, properties)

    def get(self, product_id: str) -> dict[str, Any] | None:
        """One product's properties."""
        with self._state.store() as store:
            return store.get(product_id)

    def hybrid(self, query: str, vector: np.ndarray | None, target: str = "text", k: int = 10,
               filters: ProductFilter | None = None, alpha: float = 0.5) -> list[Hit]:
        """Hybrid (BM25 + vector) query."""
        with self._state.store() as store:
            return store.hybrid(query, vector, target, k, filters, alpha)

    def records(self, product_ids: Sequence[str]) -> dict[str, Product]:
        """Catalog records of products."""
        with self._state.store() as store:
            return store.records(product_ids)

    def vectors(self, product_ids: Sequence[str], names: Sequence[str] = VECTOR_NAMES
                ) -> dict[str, dict[str, np.ndarray]]:
        """Named vectors of products."""
        with self._state.store() as store:
            return store.vectors(product_ids, names)

    def count_matching(self, filters: ProductFilter | None) -> int:
        """How many products a filter keeps."""
        with self._state.store() as store:
            return store.count_matching(filters)

    def find(self, filters: ProductFilter, k: int = 100) -> list[Product]:
        """Records a filter keeps."""
        with self._state.store() as store:
            return store.find(filters, k)

    def iter_records(self) -> Iterator[Product]:
        """Every stored record (gathering a vocabulary when none was saved)."""
        with self._state.store() as store:
            yield from store.iter_records()


def init_state(app: Flask, settings: Settings) -> AppState:
    """Attach a fresh AppState to the app (and start its warm-up when ``api.warmup`` is on)."""
    state = AppState(settings)
    app.extensions[EXTENSION] = state
    if settings.api.warmup:
        state.warmup = Warmup(state.warmup_steps()).start()
    return state


def state() -> AppState:
    """The current app's state."""
    return current_app.extensions[EXTENSION]
