"""CORS for the shop origins in ``ApiSettings.cors_origins`` (comma-separated; ``*`` = any; empty = none).

Only a listed ``Origin`` is echoed back, so a browser on any other site cannot read the API's answers.
Preflights (``OPTIONS``, answered by Flask's automatic handler) get the allowed methods and headers.
"""

from __future__ import annotations

from flask import Flask, Response, request

ALLOWED_HEADERS = "Content-Type, Authorization"
MAX_AGE_S = "600"


def allowed_origins(setting: str) -> frozenset[str]:
    """The configured origins, normalised (no trailing slash)."""
    return frozenset(o.strip().rstrip("/") for o in setting.split(",") if o.strip())


def init_cors(app: Flask, setting: str) -> None:
    """Add CORS headers to responses for allowed origins."""
    origins = allowed_origins(setting)
    if not origins:
        return

    @app.after_request
    def _cors(response: Response) -> Response:
        origin = request.headers.get("Origin", "").rstrip("/")
        if origin and ("*" in origins or origin in origins):
            response.headers["Access-Control-Allow-Origin"] = "*" if "*" in origins else origin
            response.vary.add("Origin")
            if request.method == "OPTIONS":
                response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
                response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
                response.headers["Access-Control-Max-Age"] = MAX_AGE_S
        return response
