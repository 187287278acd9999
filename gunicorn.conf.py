"""The gunicorn settings the project ships (gunicorn reads ``./gunicorn.conf.py`` by default; pass ``-c`` elsewhere).

Each worker warms up after the fork (models, recommendation service, ask vocabulary) and only then accepts
connections, so no request waits for a model. Warm-up is on unless ``RECSYS_API__WARMUP`` says otherwise; when a
warm-up step keeps failing (e.g. Weaviate down) the worker serves anyway after the first failure and ``/readyz``
answers 503 ``warming`` with the reason while the step is retried. gunicorn's own error pages are JSON too.

Workers are ``api.worker.GuardedThreadWorker`` (gthread whose event loop reads each request whole, within the
``[serve]`` deadlines, before a thread takes it; so slow or half-sent requests hold no thread). Metrics are
Prometheus multiprocess: every worker writes its counts under ``PROMETHEUS_MULTIPROC_DIR`` (a fresh temporary
folder unless set; emptied at start) and any worker's ``/metrics`` adds them all up.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from api.gunicorn_errors import install
from api.warmup import freeze_heap

install()  # gunicorn's own errors (before Flask: a request line too long, …) answer in the API's JSON shape

os.environ.setdefault("RECSYS_API__WARMUP", "true")

worker_class = "api.worker.GuardedThreadWorker"
threads = 8  # per worker; [serve] caps how many one client, image work and probes may take
worker_connections = 1000  # open connections per worker (idle, being read, or in a thread)
keepalive = 5  # seconds an idle kept-alive connection is held (in the event loop, not a thread)
timeout = 120  # a worker that stops answering for this long is restarted (warm-up keeps its heartbeat going)
preload_app = False  # the app, and so its warm-up thread, must be built in each worker, after the fork
WARMUP_WAIT_S = 300.0  # the most a worker holds back its first connection for its warm-up
METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"


def on_starting(server: Any) -> None:
    """Give the workers an empty Prometheus multiprocess folder (before any of them imports prometheus_client)."""
    folder = os.environ.get(METRICS_ENV)
    if not folder:
        folder = tempfile.mkdtemp(prefix="recsys-metrics-")
        os.environ[METRICS_ENV] = folder
        server.recsys_metrics_tmp = folder
    Path(folder).mkdir(parents=True, exist_ok=True)
    for stale in Path(folder).glob("*.db"):  # counts of an earlier run would be added to this one's
        stale.unlink()


def child_exit(server: Any, worker: Any) -> None:
    """A worker exited: its counters stay in the sums, its live gauges go (prometheus_client's bookkeeping)."""
    from prometheus_client import multiprocess  # after on_starting set the folder

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    """Remove the metrics folder this config created (one given in the environment is left)."""
    folder = getattr(server, "recsys_metrics_tmp", None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)


def post_worker_init(worker: Any) -> None:
    """Hold the worker's first connection until its warm-up finished (or failed once), beating the heartbeat; then
    freeze the warm heap (see ``api.warmup``)."""
    warmup = getattr(getattr(worker.wsgi, "extensions", {}).get("recsys"), "warmup", None)
    if warmup is None:
        return
    deadline = time.monotonic() + WARMUP_WAIT_S
    while not warmup.wait(0.5):
        worker.notify()
        if warmup.error is not None or time.monotonic() > deadline:
            worker.log.warning("worker %s serves before its warm-up finished: %s", os.getpid(), warmup.status())
            return
    worker.log.info("worker %s warm: %s; %d objects frozen", os.getpid(), ", ".join(warmup.status()["loaded"]),
                    freeze_heap())
