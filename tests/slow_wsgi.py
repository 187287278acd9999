"""Test app for gunicorn: the real API (settings from the environment) plus ``GET /test/slow?s=N``, a request that
stays in flight for N seconds (at most 10), so tests can hold a worker's threads on purpose."""

from __future__ import annotations

import time

from flask import jsonify, request
from flask.typing import ResponseReturnValue

from api.app import create_app

app = create_app()


@app.get("/test/slow")
def slow() -> ResponseReturnValue:
    """Sleep, then answer (bounded, so a test can never hang a worker for long)."""
    seconds = min(float(request.args.get("s", "1")), 10.0)
    time.sleep(seconds)
    return jsonify({"slept": seconds})
