"""The gunicorn worker ``gunicorn.conf.py`` ships: gthread, except that no thread waits for a slow client.

Plain gthread hands a connection to a thread as soon as its first byte arrives, and the thread then blocks reading
the rest with no deadline: a few clients that send half a request (slowloris, a slow body) hold every thread.
Here the worker's event loop reads each request's head and body itself, without blocking, within
``serve.header_timeout_s`` (from the accept; on a kept-alive connection, from the next request's first byte) and
``serve.body_timeout_s`` (from the end of the head), else a JSON 408 and the socket is closed (so is one that
never sends a byte), and only a complete request goes to a thread. One client address may have at most
``serve.max_inflight_per_ip`` requests queued or running in the worker (else a JSON 429 with ``Retry-After``), and
``/healthz`` and ``/readyz`` run on ``serve.probe_threads`` threads of their own, so a probe never waits behind
other work. A kept-alive connection carries at most ``serve.keepalive_requests`` requests (like nginx's
``keepalive_requests``), so clients that hold their connections are spread again over the workers.
"""

from __future__ import annotations

import errno
import re
import selectors
import time
from collections import Counter
from concurrent import futures
from functools import partial
from typing import Any

from gunicorn.workers.gthread import TConn, ThreadWorker

from api.gunicorn_errors import write_json_error
from recommender.config import ServeSettings

MAX_HEAD_BYTES = 64 * 1024  # a head longer than this (cookies included) is refused with a 431
RECV_BYTES = 256 * 1024
_PROBE = re.compile(rb"(?:GET|HEAD) /(?:healthz|readyz)[ ?]")
_HEADER = re.compile(rb"\r\n(content-length|transfer-encoding|x-forwarded-for):[ \t]*([^\r\n]*)", re.IGNORECASE)


CHUNKED = -1


def body_needed(head: bytes, max_body: int) -> int:
    """Body bytes to read before a thread takes the request: its ``Content-Length``, ``CHUNKED``, or 0 when there is
    none or the app answers it unread (over ``max_body``: a 413; malformed: gunicorn's parser gives a 400)."""
    headers = {name.lower(): value.strip() for name, value in _HEADER.findall(head)}
    if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
        return CHUNKED
    length = headers.get(b"content-length", b"0")
    return int(length) if length.isdigit() and int(length) <= max_body else 0


class RequestReader:
    """One request's bytes as they arrive, and whether it is complete (each chunk is scanned once)."""

    def __init__(self, max_body: int) -> None:
        self.data = bytearray()
        self.max_body = max_body
        self.head_end = -1  # index after the blank line, once the head is complete
        self.needed = 0

    def feed(self, chunk: bytes) -> int | None:
        """Add ``chunk``: ``0`` the request is complete, ``None`` not yet, else the HTTP status to refuse it with."""
        start = max(0, len(self.data) - 3)
        self.data += chunk
        if self.head_end < 0:
            end = self.data.find(b"\r\n\r\n", start)
            if end < 0 or end > MAX_HEAD_BYTES:
                return 431 if len(self.data) > MAX_HEAD_BYTES else None
            self.head_end = end + 4
            self.needed = body_needed(bytes(self.data[:end + 2]), self.max_body)
        body = len(self.data) - self.head_end
        if self.needed == CHUNKED:
            return 0 if body > self.max_body or self.data.endswith(b"0\r\n\r\n") else None
        return 0 if body >= self.needed else None


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
    """gthread whose event loop buffers whole requests (a deadline from the accept or, kept alive, from the first
    byte), caps in-flight requests per client and runs probes apart."""

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

    def accept(self, server: Any, listener: Any) -> None:
        """Accept a connection and start the clock on its first request: one that never sends a byte is closed too."""
        if self.cfg.is_ssl:
            super().accept(server, listener)
            return
        try:
            sock, client = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        conn = TConn(self.cfg, sock, client, server)
        self.nr_conns += 1
        with self._lock:
            conn.recsys_reader = RequestReader(self.max_body)
            self.pending[conn] = time.monotonic() + self.serve.header_timeout_s
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.on_client_socket_readable, conn))

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
                conn.recsys_reader = RequestReader(self.max_body)
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
        reader: RequestReader = conn.recsys_reader
        had_head = reader.head_end >= 0
        state = reader.feed(chunk)
        if state is None:
            if not had_head and reader.head_end >= 0:  # the head is in: the body gets its own deadline
                self.pending[conn] = time.monotonic() + self.serve.body_timeout_s
            return
        if state:
            self._refuse(conn, state, "Request Header Fields Too Large", "the request head is too large")
            return
        self._dispatch(conn)

    def _dispatch(self, conn: Any) -> None:
        data = bytes(conn.recsys_reader.data)
        conn.recsys_reader = None
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

    def handle_request(self, req: Any, conn: Any) -> bool:
        """As gthread does; the connection's ``serve.keepalive_requests``-th request is answered with ``Connection:
        close``. A client keeps its connections for as long as the server does, so the workers that happened to
        accept them would serve it for good; when it connects again, the worker whose event loop is free first
        accepts (the busier one is slower to), which spreads the load again."""
        conn.recsys_requests = getattr(conn, "recsys_requests", 0) + 1
        if 0 < self.serve.keepalive_requests <= conn.recsys_requests:
            req.force_close()
        return bool(super().handle_request(req, conn))

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

