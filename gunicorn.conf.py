"""The gunicorn settings the project ships (gunicorn reads ``./gunicorn.conf.py`` by default; pass ``-c`` elsewhere).

Each worker warms up after the fork (models, recommendation service, ask vocabulary) and only then accepts
connections, so no request waits for a model. Warm-up is on unless ``RECSYS_API__WARMUP`` says otherwise; when a
warm-up step keeps failing (e.g. Weaviate down) the worker serves anyway after the first failure and ``/readyz``
answers 503 ``warming`` with the reason while the step is retried. gunicorn's own error pages are JSON too.
"""

from __future__ import annotations

import os
import time
from typing import Any

from api.gunicorn_errors import install

install()  # gunicorn's own errors (before Flask: a request line too long, …) answer in the API's JSON shape

os.environ.setdefault("RECSYS_API__WARMUP", "true")

timeout = 120  # a worker that stops answering for this long is restarted (warm-up keeps its heartbeat going)
preload_app = False  # the app, and so its warm-up thread, must be built in each worker, after the fork
WARMUP_WAIT_S = 300.0  # the most a worker holds back its first connection for its warm-up


def post_worker_init(worker: Any) -> None:
    """Hold the worker's first connection until its warm-up finished (or failed once), beating the heartbeat."""
    warmup = getattr(getattr(worker.wsgi, "extensions", {}).get("recsys"), "warmup", None)
    if warmup is None:
        return
    deadline = time.monotonic() + WARMUP_WAIT_S
    while not warmup.wait(0.5):
        worker.notify()
        if warmup.error is not None or time.monotonic() > deadline:
            worker.log.warning("worker %s serves before its warm-up finished: %s", os.getpid(), warmup.status())
            return
    worker.log.info("worker %s warm: %s", os.getpid(), ", ".join(warmup.status()["loaded"]))
