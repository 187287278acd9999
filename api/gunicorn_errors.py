"""gunicorn's own error responses (request line or header too large, a malformed request) in the API's JSON error
shape instead of gunicorn's HTML page. Flask never sees these requests; ``gunicorn.conf.py`` installs this."""

from __future__ import annotations

import json
import socket

from gunicorn import util


def write_json_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """What ``gunicorn.util.write_error`` does, with ``{"error": {"code", "message", "field"}}`` as the body."""
    code = reason.lower().replace(" ", "_")
    body = json.dumps({"error": {"code": code, "message": mesg or reason, "field": None}}).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    util.write_nonblock(sock, head.encode("latin-1") + body)


def install() -> None:
    """Make every gunicorn worker answer its own errors in JSON (the workers look the function up per error)."""
    util.write_error = write_json_error
