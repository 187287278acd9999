"""What one app instance holds between requests: the settings, one store connection, lazily loaded encoders.

Lives in ``app.extensions["recsys"]`` (no import-time globals). The store connects on first use; when a call
finds Weaviate unreachable the connection is dropped, so the next request reconnects once Weaviate is back.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask, current_app

from recommender import service
from recommender.config import Settings
from recommender.errors import StoreUnavailable
from recommender.search import QueryEncoders
from recommender.store import ProductStore

EXTENSION = "recsys"


class AppState:
    """Per-app resources: settings, a reconnecting ProductStore and the query encoders."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.encoders = QueryEncoders(lambda: service.text_encoder(settings),
                                      lambda: service.image_encoder(settings))
        self._store: ProductStore | None = None
        self._lock = threading.Lock()

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
            self.reset(store)
            raise

    def is_ready(self) -> bool:
        """True when Weaviate answers its readiness probe; drops the connection when it does not."""
        try:
            with self.store() as store:
                if store.is_ready():
                    return True
                self.reset(store)
                return False
        except StoreUnavailable:
            return False

    def reset(self, store: ProductStore | None = None) -> None:
        """Close and forget the connection (only if it is still ``store``, when given)."""
        with self._lock:
            if self._store is None or (store is not None and self._store is not store):
                return
            old, self._store = self._store, None
        old.close()

    def close(self) -> None:
        """Release the store connection."""
        self.reset()


def init_state(app: Flask, settings: Settings) -> AppState:
    """Attach a fresh AppState to the app."""
    state = AppState(settings)
    app.extensions[EXTENSION] = state
    return state


def state() -> AppState:
    """The current app's state."""
    return current_app.extensions[EXTENSION]
