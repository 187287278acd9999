"""``GET /metrics``: Prometheus' official client (``prometheus_client``), summed over every gunicorn worker.

Per endpoint (the URL rule, not the raw path, so ids do not explode the label set) and method (a standard one,
else ``other``): request counts by status (a registered code, else its class) and a latency histogram; plus
events received per type. Under gunicorn, ``gunicorn.conf.py`` points ``PROMETHEUS_MULTIPROC_DIR`` (the client's
own variable) at a folder emptied at start: each worker writes its counts there and a scrape, whichever worker
answers it, adds up all of them, including workers that have since exited. Without the variable (tests, one
process) the counts are this app's own.
"""

from __future__ import annotations

import os
import time
from collections import Counter as Tally
from http import HTTPStatus

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

EXTENSION = "recsys_metrics"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Label values come from fixed sets so a hostile client cannot add series: anything else is "other".
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
STATUSES = frozenset(int(s) for s in HTTPStatus)
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

bp = Blueprint("metrics", __name__)


class Metrics:
    """The app's request and event metrics, and how to render them for a scrape."""

    def __init__(self) -> None:
        disable_created_metrics()  # no `_created` series: they add one per label set and nothing we use
        self._registry = CollectorRegistry()
        self.requests = Counter("recsys_http_requests", "HTTP requests by endpoint, method and status.",
                                ("endpoint", "method", "status"), registry=self._registry)
        self.latency = Histogram("recsys_http_request_seconds", "HTTP request latency by endpoint and method.",
                                 ("endpoint", "method"), buckets=BUCKETS, registry=self._registry)
        self.events = Counter("recsys_events", "Events accepted by POST /v1/events, by type sent.", ("type",),
                              registry=self._registry)

    def observe(self, endpoint: str, method: str, status: str, seconds: float) -> None:
        """Record one finished request."""
        self.requests.labels(endpoint, method, status).inc()
        self.latency.labels(endpoint, method).observe(seconds)

    def count_events(self, kinds: Tally[str]) -> None:
        """Record accepted events per incoming type (``click`` counted as sent, though stored as a view)."""
        for kind, n in kinds.items():
            self.events.labels(kind).inc(n)

    def render(self) -> bytes:
        """The exposition text: every worker's counts when running multiprocess, else this app's."""
        if os.environ.get(MULTIPROC_ENV):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self._registry)


def method_label(method: str) -> str:
    """The method as a label: a standard one, else ``other``."""
    return method if method in METHODS else "other"


def status_label(status: int) -> str:
    """The status as a label: a registered code, else its class (``5xx``)."""
    return str(status) if status in STATUSES else f"{min(max(status // 100, 1), 5)}xx"


def metrics() -> Metrics:
    """The current app's metrics."""
    return current_app.extensions[EXTENSION]


def init_metrics(app: Flask) -> Metrics:
    """Attach metrics and the hooks that time every request."""
    m = app.extensions[EXTENSION] = Metrics()

    @app.before_request
    def _start() -> None:
        g.recsys_started = time.perf_counter()

    @app.after_request
    def _finish(response: Response) -> Response:
        started = g.get("recsys_started")
        if started is not None:
            endpoint = request.url_rule.rule if request.url_rule is not None else "<unmatched>"
            m.observe(endpoint, method_label(request.method), status_label(response.status_code),
                      time.perf_counter() - started)
        return response

    return m


@bp.get("/metrics")
def expose() -> Response:
    """The metrics in Prometheus text format."""
    return Response(metrics().render(), headers={"Content-Type": CONTENT_TYPE_LATEST})
