"""Liveness and readiness probes."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from api.errors import error_response
from api.state import state

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """The process is up and serving (touches nothing else)."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Ready when Weaviate is reachable; else 503 in the one error shape."""
    if state().is_ready():
        return jsonify({"status": "ready"}), 200
    return error_response(503, "store_unavailable", "the vector store is not reachable")
