"""AppState's shared store: a connection dropped after a failure is closed only once in-flight calls had their time."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

import pytest

from api.state import AppState
from recommender.config import Settings
from recommender.errors import StoreUnavailable


class FakeStore:
    """Stands in for a connected ProductStore: records its closing."""

    def __init__(self) -> None:
        self.closes = 0
        self.closed = threading.Event()

    def close(self) -> None:
        self.closes += 1
        self.closed.set()


def app_state(timeout_s: float) -> tuple[AppState, Any]:
    settings = Settings()
    state = AppState(replace(settings, weaviate=replace(settings.weaviate, query_timeout_s=timeout_s)))
    store = FakeStore()
    state._store = store  # type: ignore[assignment]
    return state, store


def fail_once(state: AppState) -> None:
    with pytest.raises(StoreUnavailable), state.store():
        raise StoreUnavailable("node gone")


def test_a_failed_call_drops_the_store_and_closes_it_after_the_deadline() -> None:
    """Other requests may still be inside a call on the dropped store: it stays open for their deadline, then closes."""
    state, store = app_state(0.2)
    fail_once(state)
    assert state._store is None and store.closes == 0  # the next request connects anew; this one is not closed yet
    assert store.closed.wait(timeout=30) and store.closes == 1
    state.close()
    assert store.closes == 1  # closed once


def test_closing_the_app_closes_a_store_still_in_its_grace_time() -> None:
    state, store = app_state(60.0)
    fail_once(state)
    assert store.closes == 0
    state.close()
    assert store.closes == 1 and state._retired == []
