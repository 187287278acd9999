"""The gunicorn worker ``gunicorn.conf.py`` ships: gthread, except that no thread waits for a slow client.

Plain gthread hands a connection to a thread as soon as its first byte arrives, and the thread then blocks reading
the rest with no deadline: a few clients that send half a request (slowloris, a slow body) hold every thread.
Here the worker's event loop reads each request's head and body itself, without blocking, within
``serve.header_timeout_s`` and ``serve.body_timeout_s`` (else a JSON 408 and the socket is closed), and only a
complete request goes to a thread. One client address may have at most ``serve.max_inflight_per_ip`` requests
queued or running in the worker (else a JSON 429 with ``Retry-After``), and ``/healthz`` and ``/readyz`` run on
``serve.probe_threads`` threads of their own, so a probe never waits behind other work.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from concurrent import futures
from typing import Any

from gunicorn.workers.gthread import ThreadWorker

from api.gunicorn_errors import write_json_error
from recommender.config import ServeSettings

MAX_HEAD_BYTES = 64 * 1024  # a head longer than this (cookies included) is refused with a 431
RECV_BYTES = 64 * 1024
_PROBE = re.compile(rb"(?:GET|HEAD) /(?:healthz|readyz)[ ?]")
_HEADER = re.compile(rb"\r\n(content-length|transfer-encoding|x-forwarded-for):[ \t]*([^\r\n]*)", re.IGNORECASE)


def request_state(data: bytes, max_body: int) -> int | None:
    """Whether ``data`` (a request's bytes so far) is complete: ``0`` yes, ``None`` not yet, or the HTTP status to
    refuse it with. A body over ``max_body`` counts as complete: the app answers it with a 413 without reading it."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return 431 if len(data) > MAX_HEAD_BYTES else None
    if end > MAX_HEAD_BYTES:
        return 431
    headers = {name.lower(): value.strip() for name, value in _HEADER.findall(data[:end + 2])}
    body = len(data) - end - 4
    if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
        return 0 if body > max_body or data.endswith(b"0\r\n\r\n") else None
    length = headers.get(b"content-length", b"0")
    if not length.isdigit():
        return 0  # gunicorn's parser answers a malformed length with its own 400
    return 0 if int(length) > max_body or body >= int(length) else None


def client_address(peer: Any, data: bytes, trusted: list[str]) -> str:
    """The address limits count: the peer, or the last ``X-Forwarded-For`` hop when the peer is a trusted proxy
    (gunicorn's ``forwarded_allow_ips``)."""
    host = peer[0] if isinstance(peer, tuple) else str(peer)
    if "*" in trusted or host in trusted:
        end = data.find(b"\r\n\r\n")
        hops = [v for k, v in _HEADER.findall(data[:end + 2]) if k.lower() == b"x-forwarded-for"]
        if hops:
            return hops[-1].split(b",")[-1].strip().decode("latin-1")[:64] or host
    return host


class GuardedThreadWorker(ThreadWorker):
    """gthread whose event loop buffers whole requests, caps in-flight requests per client and runs probes apart."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.serve = ServeSettings()
        self.max_body = 16 * 1024 * 1024
        self.inflight: Counter[str] = Counter()
        self.pending: dict[Any, float] = {}  # connection → deadline of the request being read
        self.probe_pool: futures.ThreadPoolExecutor | None = None

    def load_wsgi(self) -> None:
        """Load the app, then take the ``[serve]`` settings and body limit it was built with."""
        super().load_wsgi()
        recsys = getattr(self.wsgi, "extensions", {}).get("recsys")
        if recsys is not None:
            self.serve = recsys.settings.serve
            self.max_body = recsys.settings.api.max_content_length
        self.probe_pool = futures.ThreadPoolExecutor(self.serve.probe_threads, thread_name_prefix="probe")

    def on_client_socket_readable(self, conn: Any, client: Any) -> None:
        """Read what arrived; hand the request to a thread only once it is complete."""
        if self.cfg.is_ssl:
            super().on_client_socket_readable(conn, client)
            return
        with self._lock:
            if conn not in self.pending:  # a new request on this connection
                if conn.initialized:  # a kept-alive connection
                    try:
                        self._keep.remove(conn)
                    except ValueError:
                        return  # race condition: already expired
                conn.recsys_buf = bytearray()
                self.pending[conn] = time.monotonic() + self.serve.header_timeout_s
        try:
            chunk = conn.sock.recv(RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._drop(conn)
            return
        had_head = b"\r\n\r\n" in conn.recsys_buf
        conn.recsys_buf += chunk
        state = request_state(bytes(conn.recsys_buf), self.max_body)
        if state is None:
            if not had_head and b"\r\n\r\n" in conn.recsys_buf:
                self.pending[conn] = time.monotonic() + self.serve.body_timeout_s
            return
        if state:
            self._refuse(conn, state, "Request Header Fields Too Large", "the request head is too large")
            return
        self._dispatch(conn)

    def _dispatch(self, conn: Any) -> None:
        data = bytes(conn.recsys_buf)
        conn.recsys_buf = None
        client = client_address(conn.client, data, self.cfg.forwarded_allow_ips)
        with self._lock:
            del self.pending[conn]
            self.poller.unregister(conn.sock)
            busy = self.inflight[client] >= self.serve.max_inflight_per_ip
            if not busy:
                self.inflight[client] += 1
        if busy:
            self._refuse(conn, 429, "Too Many Requests", "too many requests in flight from this address; retry shortly",
                         registered=False)
            return
        conn.recsys_client = client
        conn.init()
        conn.sock.settimeout(self.serve.body_timeout_s)  # bounds the thread's reads of what is left, and writes
        conn.parser.unreader.unread(data)
        pool = self.probe_pool if _PROBE.match(data) and self.probe_pool is not None else self.tpool
        self._wrap_future(pool.submit(self.handle, conn), conn)

    def finish_request(self, fs: Any) -> None:
        """Count the request out of its client's in-flight requests, then as gthread does."""
        client = getattr(fs.conn, "recsys_client", None)
        if client is not None:
            with self._lock:
                self.inflight[client] -= 1
                if self.inflight[client] <= 0:
                    del self.inflight[client]
            fs.conn.recsys_client = None
        super().finish_request(fs)

    def murder_keepalived(self) -> None:
        """Close idle kept-alive connections (gthread) and requests not read within their deadline (a 408)."""
        super().murder_keepalived()
        now = time.monotonic()
        with self._lock:
            late = [conn for conn, deadline in self.pending.items() if deadline < now]
        for conn in late:
            self._refuse(conn, 408, "Request Timeout", "the request did not arrive in time")

    def _refuse(self, conn: Any, status: int, reason: str, message: str, registered: bool = True) -> None:
        headers = {"Retry-After": "1"} if status == 429 else {}
        try:
            write_json_error(conn.sock, status, reason, message, headers)
        except OSError as exc:  # the client is gone or not reading: closing is all that is left
            self.log.debug("could not send %s to %s: %s", status, conn.client, exc)
        self._drop(conn, registered)

    def _drop(self, conn: Any, registered: bool = True) -> None:
        with self._lock:
            self.pending.pop(conn, None)
            if registered:
                try:
                    self.poller.unregister(conn.sock)
                except (KeyError, ValueError, OSError) as exc:
                    self.log.debug("socket already unregistered: %s", exc)
            self.nr_conns -= 1
        conn.close()

    def run(self) -> None:
        """gthread's loop; the probe threads are shut down with the worker."""
        try:
            super().run()
        finally:
            if self.probe_pool is not None:
                self.probe_pool.shutdown(wait=False)

