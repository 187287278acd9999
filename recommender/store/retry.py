"""Deadlines, retries and node failover for store calls: how a product page and a nightly job each ride out a
slow store or a lost cluster node."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Concatenate, ParamSpec, Protocol, TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)
from tenacity.stop import StopBaseT

from recommender.errors import StoreUnavailable

P = ParamSpec("P")
R = TypeVar("R")

log = logging.getLogger(__name__)


class Resilient(Protocol):
    """What the decorators need of a store."""

    query_timeout_s: float
    retries: int
    retry_window_s: float
    _pool: ThreadPoolExecutor

    def failover(self) -> bool:
        """Move to another node; False when there is none to move to."""
        ...


S = TypeVar("S", bound=Resilient)


def retrying(store: Resilient) -> Retrying:
    """The jobs' retry policy: StoreUnavailable is retried with exponential backoff (at most 8 s apart) until
    ``retries`` attempts are spent *and* ``retry_window_s`` has passed (the time a cluster needs to notice a lost
    node); before each retry the store moves to the next node when it has several. Safe because every call it
    wraps is idempotent: reads, and writes keyed by uuid5 ids."""
    stop: StopBaseT = stop_after_attempt(store.retries + 1)
    if store.retry_window_s > 0:
        stop = stop_after_attempt(store.retries + 1) & stop_after_delay(store.retry_window_s)

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        moved = store.failover()
        log.warning("%s; retrying%s", error, " on another node" if moved else "")

    return Retrying(stop=stop, wait=wait_exponential(multiplier=0.5, max=8),
                    retry=retry_if_exception_type(StoreUnavailable), reraise=True, before_sleep=before_sleep)


def bounded(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """Give a read a deadline. The client retries an unreachable gRPC server for about a minute before it
    fails (not configurable); a product page cannot wait that long, so past ``query_timeout_s`` the caller
    gets StoreUnavailable while the abandoned call finishes in the background. On the request path
    (``retries`` = 0) a read that found its node unreachable is tried once more on another node when the store
    has several; a store opened for a job retries per :func:`retrying`: a busy machine or a lost node should slow
    a nightly job, not fail it."""

    @functools.wraps(method)
    def wrapper(self: S, *args: P.args, **kwargs: P.kwargs) -> R:
        if self.retries <= 0:
            try:
                return _attempt(self, method, *args, **kwargs)
            except StoreUnavailable:
                if not self.failover():
                    raise
                return _attempt(self, method, *args, **kwargs)
        return retrying(self)(_attempt, self, method, *args, **kwargs)

    return wrapper


def _attempt(store: S, method: Callable[Concatenate[S, P], R], *args: P.args, **kwargs: P.kwargs) -> R:
    if store.query_timeout_s <= 0:
        return method(store, *args, **kwargs)
    try:
        future = store._pool.submit(method, store, *args, **kwargs)
    except RuntimeError as exc:  # closed under this call: another request found the node gone and reconnected
        raise StoreUnavailable("Weaviate connection closed while in use (reconnecting)") from exc
    try:
        return future.result(timeout=store.query_timeout_s)
    except FutureTimeout as exc:
        future.cancel()
        raise StoreUnavailable(f"Weaviate did not answer within {store.query_timeout_s:g}s") from exc


def retried_write(store: Resilient, write: Callable[[], R]) -> R:
    """Run one idempotent write (no deadline: a batch may take long), retried per :func:`retrying` for a job."""
    if store.retries <= 0:
        return write()
    return retrying(store)(write)

