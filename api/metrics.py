"""``GET /metrics``: Prometheus text format, written by hand (no extra dependency).

Per endpoint (the URL rule, not the raw path, so ids do not explode the label set) and method (a standard one,
else ``other``): request counts by status (a registered code, else its class) and a latency histogram; plus
events received per type. Counts are per process: under several gunicorn workers each worker reports its own
(scrape each, or sum).
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from http import HTTPStatus

from flask import Blueprint, Flask, Response, current_app, g, request

EXTENSION = "recsys_metrics"
# Label values come from fixed sets so a hostile client cannot add series: anything else is "other".
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
STATUSES = frozenset(int(s) for s in HTTPStatus)
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

bp = Blueprint("metrics", __name__)


class Metrics:
    """Thread-safe request counters and latency histograms."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Counter[tuple[str, str, str]] = Counter()
        self._buckets: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * (len(BUCKETS) + 1))
        self._sums: dict[tuple[str, str], float] = defaultdict(float)
        self._events: Counter[str] = Counter()

    def observe(self, endpoint: str, method: str, status: str, seconds: float) -> None:
        """Record one finished request."""
        with self._lock:
            self._requests[(endpoint, method, status)] += 1
            self._buckets[(endpoint, method)][bisect.bisect_left(BUCKETS, seconds)] += 1
            self._sums[(endpoint, method)] += seconds

    def count_events(self, kinds: Counter[str]) -> None:
        """Record accepted events per incoming type (``click`` counted as sent, though stored as a view)."""
        with self._lock:
            self._events.update(kinds)

    def render(self) -> str:
        """The exposition text."""
        with self._lock:
            lines = ["# HELP recsys_http_requests_total HTTP requests by endpoint, method and status.",
                     "# TYPE recsys_http_requests_total counter"]
            lines += [f'recsys_http_requests_total{{endpoint="{_esc(e)}",method="{m}",status="{s}"}} {n}'
                      for (e, m, s), n in sorted(self._requests.items())]
            lines += ["# HELP recsys_http_request_seconds HTTP request latency by endpoint and method.",
                      "# TYPE recsys_http_request_seconds histogram"]
            for (e, m), counts in sorted(self._buckets.items()):
                lines += _histogram(f'endpoint="{_esc(e)}",method="{m}"', counts, self._sums[(e, m)])
            lines += ["# HELP recsys_events_total Events accepted by POST /v1/events, by type sent.",
                      "# TYPE recsys_events_total counter"]
            lines += [f'recsys_events_total{{type="{_esc(k)}"}} {n}' for k, n in sorted(self._events.items())]
        return "\n".join(lines) + "\n"


def _histogram(labels: str, counts: Iterable[int], total: float) -> list[str]:
    out, cumulative = [], 0
    counts = list(counts)
    for bound, n in zip((*BUCKETS, float("inf")), counts, strict=True):
        cumulative += n
        le = "+Inf" if bound == float("inf") else repr(bound)
        out.append(f'recsys_http_request_seconds_bucket{{{labels},le="{le}"}} {cumulative}')
    out.append(f"recsys_http_request_seconds_sum{{{labels}}} {total:.6f}")
    out.append(f"recsys_http_request_seconds_count{{{labels}}} {cumulative}")
    return out


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


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
    return Response(metrics().render(), mimetype="text/plain", headers={"Content-Type": "text/plain; version=0.0.4"})
