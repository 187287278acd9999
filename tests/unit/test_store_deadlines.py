"""Read deadlines and the jobs' retries (``store.products._bounded``): a timed-out or unreachable read is retried
with backoff when the store was opened for a job, and reported at once on the request path."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from recommender.errors import StoreUnavailable
from recommender.store.products import ProductStore, _bounded


class Flaky(ProductStore):
    """A store whose one read blocks (first ``stalls`` calls) or fails (``failures`` calls) before answering."""

    def __init__(self, timeout_s: float, retries: int, stalls: int = 0, failures: int = 0) -> None:
        super().__init__(client=None, collection="X", query_timeout_s=timeout_s, retries=retries)  # type: ignore[arg-type]
        self.stalls, self.failures, self.calls = stalls, failures, 0
        self.release = threading.Event()

    @_bounded
    def read(self) -> str:
        self.calls += 1
        if self.calls <= self.stalls:
            self.release.wait(30)  # blocked until the test ends: only the deadline can end this attempt
        if self.calls <= self.failures:
            raise StoreUnavailable("connection refused")
        return "answer"

    def done(self) -> None:
        self.release.set()
        self._pool.shutdown(wait=True)


@pytest.fixture
def stores() -> Any:
    made: list[Flaky] = []
    yield lambda *a, **k: made.append(Flaky(*a, **k)) or made[-1]
    for store in made:
        store.done()


def test_a_job_rides_out_a_stalled_read(stores: Any) -> None:
    store = stores(3.0, retries=2, stalls=1)
    assert store.read() == "answer" and store.calls == 2


def test_the_request_path_reports_a_stalled_read_at_once(stores: Any) -> None:
    store = stores(0.5, retries=0, stalls=1)
    with pytest.raises(StoreUnavailable, match=r"did not answer within 0.5s"):
        store.read()
    assert store.calls == 1


def test_a_store_that_stays_unreachable_still_fails_clearly_after_its_retries(stores: Any) -> None:
    store = stores(0.0, retries=2, failures=10)
    with pytest.raises(StoreUnavailable, match="connection refused"):
        store.read()
    assert store.calls == 3


def test_a_read_on_a_store_closed_under_it_is_unavailable_not_a_crash(stores: Any) -> None:
    """A request thread still holding a store that another thread closed (it found the node gone and reconnected)
    gets StoreUnavailable, which the API answers with its fallback or a JSON 503, never a 500."""
    store = stores(1.0, retries=0)
    store._pool.shutdown(wait=True)
    with pytest.raises(StoreUnavailable, match="closed while in use"):
        store.read()
    assert store.calls == 0
