"""Liveness and readiness probes."""

from __future__ import annotations

import os
from typing import Any

from flask import Blueprint, Response, jsonify

from api.errors import error_response
from api.state import AppState, state

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """The process is up and serving (touches nothing else)."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Ready when this worker's warm-up (if on) finished and Weaviate is reachable; else 503 in the error shape."""
    app_state = state()
    warmup = app_state.warmup.status() if app_state.warmup is not None else None
    if warmup is not None and not warmup["warm"]:
        pending = ", ".join(warmup["pending"])
        why = f"; last failure: {warmup['error']}" if warmup["error"] else ""
        body = {"status": "warming", "error": {"code": "warming", "message": f"still loading {pending}{why}",
                                               "field": None}, **_loaded(app_state, warmup)}
        return jsonify(body), 503
    if app_state.is_ready():
        return jsonify({"status": "ready", **_loaded(app_state, warmup)}), 200
    return error_response(503, "store_unavailable", "the vector store is not reachable")


def _loaded(app_state: AppState, warmup: dict[str, Any] | None) -> dict[str, Any]:
    """Which worker answered and what it has loaded (encoders built by a request count as cold loads)."""
    return {"pid": os.getpid(), "encoders": list(app_state.encoders.loaded),
            "cold_loads": list(app_state.encoders.cold_loads), "warmup": warmup}
