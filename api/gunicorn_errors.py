"""gunicorn's own error responses (request line or header too large, a malformed request) in the API's JSON error
shape instead of gunicorn's HTML page. Flask never sees these requests; ``gunicorn.conf.py`` installs this."""

from __future__ import annotations

import json
import socket
from collections.abc import Mapping

from gunicorn import util


def write_json_error(sock: socket.socket, status_int: int, reason: str, mesg: str,
                     headers: Mapping[str, str] | None = None) -> None:
    """What ``gunicorn.util.write_error`` does, with ``{"error": {"code", "message", "field"}}`` as the body (and
    ``headers``, e.g. ``Retry-After``, when given)."""
    code = reason.lower().replace(" ", "_")
    body = json.dumps({"error": {"code": code, "message": mesg or reason, "field": None}}).encode()
    extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"{extra}Content-Length: {len(body)}\r\n\r\n")
    util.write_nonblock(sock, head.encode("latin-1") + body)


def install() -> None:
    """Make every gunicorn worker answer its own errors in JSON (the workers look the function up per error)."""
    util.write_error = write_json_error
