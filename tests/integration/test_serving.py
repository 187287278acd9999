"""Workers that cannot be starved, under the real gunicorn with the shipped config (``gunicorn.conf.py``).

Slowloris sockets (half-sent heads and bodies, trickled byte by byte), a burst of photo searches and one client
with too many requests in flight: probes and product pages still answer (within a generous client timeout; no
wall-clock threshold), the half-sent requests are closed by the server, and the excess is refused with a JSON
429/503 and ``Retry-After``. Also: ``/metrics`` sums every worker's counts, whichever worker answers the scrape.
Each client sends from its own loopback address (127.0.0.x), as distinct shoppers would.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from recommender.config import ServeSettings, WeaviateSettings
from tests.gunicorn_server import gunicorn
from tests.integration.conftest import FIXTURES, IMAGE_SIZE

CLIENT_TIMEOUT_S = 30.0  # generous: a request that needs this long was starved, not slow
SHOPPER, ATTACKER, BURST = "127.0.0.1", "127.0.0.2", "127.0.0.3"
SLOWLORIS = 64  # 4× the threads of 2 workers
IMAGE_CLIENTS, IMAGE_SEARCHES_EACH = 8, 4
READY_S = 180.0


def call(base: str, method: str, path: str, body: dict[str, Any] | None = None,
         source: str = SHOPPER) -> tuple[int, dict[str, str], Any]:
    """One request on a fresh connection from ``source``: status, headers and JSON body."""
    url = urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=CLIENT_TIMEOUT_S,
                                      source_address=(source, 0))
    try:
        payload = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=payload, headers={"Content-Type": "application/json"} if payload else {})
        res = conn.getresponse()
        raw = res.read()
        content = json.loads(raw) if res.getheader("Content-Type", "").startswith("application/json") else raw
        return res.status, {k.lower(): v for k, v in res.getheaders()}, content
    finally:
        conn.close()


def open_slowloris(port: int, n: int) -> tuple[list[socket.socket], list[socket.socket]]:
    """``n`` connections that send half a request (a third stop inside the head, a third inside a declared body) or
    nothing at all."""
    socks = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=CLIENT_TIMEOUT_S, source_address=(ATTACKER, 0))
        if i % 3 == 0:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: shop\r\nX-Padding: ")
        elif i % 3 == 1:
            s.sendall(b"POST /v1/search HTTP/1.1\r\nHost: shop\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 4096\r\n\r\n{\"text\": \"")
        socks.append(s)
    return socks, [s for i, s in enumerate(socks) if i % 3 == 2]


def trickle(socks: list[socket.socket], stop: threading.Event) -> None:
    """One more byte per socket every half second (an idle timeout alone would never fire), until told to stop."""
    while not stop.wait(0.5):
        for s in socks:
            try:
                s.send(b"a")
            except OSError:
                continue  # closed by the server: what the test waits for


def closed_by_server(s: socket.socket, deadline: float) -> bytes | None:
    """What the server sent before closing the socket (``b""`` for a reset), or None if it is still open."""
    got = b""
    while time.monotonic() < deadline:
        s.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            chunk = s.recv(4096)
        except TimeoutError:
            return None
        except ConnectionResetError:
            return got
        if not chunk:
            return got
        got += chunk
    return None


def image_burst(base: str) -> list[tuple[int, dict[str, str], Any]]:
    """``IMAGE_CLIENTS`` clients each sending ``IMAGE_SEARCHES_EACH`` photo searches back to back."""
    photo = base64.b64encode((FIXTURES / "images" / "P00003.png").read_bytes()).decode()

    def client(_: int) -> list[tuple[int, dict[str, str], Any]]:
        return [call(base, "POST", "/v1/search", {"image_base64": photo, "k": 5}, source=BURST)
                for _ in range(IMAGE_SEARCHES_EACH)]

    with ThreadPoolExecutor(IMAGE_CLIENTS) as pool:
        return [r for rs in pool.map(client, range(IMAGE_CLIENTS)) for r in rs]


def weaviate_env(weaviate: WeaviateSettings, data: Path) -> dict[str, str]:
    return {"RECSYS_WEAVIATE__HOST": weaviate.host, "RECSYS_WEAVIATE__HTTP_PORT": str(weaviate.http_port),
            "RECSYS_WEAVIATE__GRPC_PORT": str(weaviate.grpc_port), "RECSYS_WEAVIATE__COLLECTION": weaviate.collection,
            "RECSYS_DATA_DIR": str(data), "RECSYS_IMAGE_ENCODER__IMAGE_SIZE": str(IMAGE_SIZE),
            "RECSYS_API__WARMUP": "true"}


def test_probes_and_product_pages_answer_through_slowloris_and_an_image_burst(
        fixtures_weaviate: WeaviateSettings, tmp_path: Path) -> None:
    log = tmp_path / "gunicorn.log"
    with gunicorn(weaviate_env(fixtures_weaviate, tmp_path / "data"), log, workers=2) as base:
        deadline = time.monotonic() + READY_S
        while call(base, "GET", "/readyz")[0] != 200:
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        socks, silent = open_slowloris(urlsplit(base).port or 0, SLOWLORIS)
        stop = threading.Event()
        dripping = [s for s in socks if s not in silent]
        dripper = threading.Thread(target=trickle, args=(dripping, stop), daemon=True)
        dripper.start()
        try:
            with ThreadPoolExecutor(1) as pool:
                burst = pool.submit(image_burst, base)
                shopper = [call(base, "GET", path) for _ in range(10)
                           for path in ("/healthz", "/readyz", "/v1/products/P00001/recommendations?k=5")]
                images = burst.result()
            ends = [closed_by_server(s, time.monotonic() + ServeSettings().body_timeout_s + 15) for s in socks]
        finally:
            stop.set()
            dripper.join()
            for s in socks:
                s.close()
    assert [status for status, _, _ in shopper] == [200] * len(shopper), [r[2] for r in shopper if r[0] != 200]
    assert all(end is not None for end in ends), f"{ends.count(None)} half-sent requests still open"
    assert all(end == b"" or end.startswith(b"HTTP/1.1 408") for end in ends if end is not None), ends[:3]
    assert any(status == 200 and body["results"] for status, _, body in images)
    for status, headers, body in images:  # the rest were refused at once, never a 5xx of another kind
        assert status == 200 or (status in (429, 503) and headers["retry-after"] == "1"
                                 and body["error"]["code"] in ("busy", "too_many_requests")), (status, body)


def test_one_address_cannot_hold_every_thread(tmp_path: Path) -> None:
    limit = ServeSettings().max_inflight_per_ip
    env = {"RECSYS_DATA_DIR": str(tmp_path / "data")}
    with (gunicorn(env, tmp_path / "gunicorn.log", workers=1, app="tests.slow_wsgi:app") as base,
          ThreadPoolExecutor(limit + 3) as pool):
        held = [pool.submit(call, base, "GET", "/test/slow?s=4", None, BURST) for _ in range(limit + 3)]
        time.sleep(1.0)  # let the slow ones be read and counted; the shopper comes from another address
        shopper = call(base, "GET", "/test/slow?s=0", source=SHOPPER)
        probe = call(base, "GET", "/healthz", source=SHOPPER)
        results = [f.result() for f in held]
    statuses = sorted(status for status, _, _ in results)
    assert statuses == [200] * limit + [429] * 3, statuses
    refused = [r for r in results if r[0] == 429]
    assert all(h["retry-after"] == "1" and body["error"]["code"] == "too_many_requests" for _, h, body in refused)
    assert shopper[0] == 200 and probe[0] == 200


def scrape_count(base: str, series: str) -> float:
    status, _, text = call(base, "GET", "/metrics")
    assert status == 200
    match = re.search(re.escape(series) + r" ([0-9.e+]+)\n", text.decode())
    return float(match.group(1)) if match else 0.0


def unmatched(base: str, i: int) -> int:
    """A GET of a path no route matches, from one of 8 client addresses."""
    return call(base, "GET", f"/nowhere/{i}", source=f"127.0.0.{10 + i % 8}")[0]


def test_metrics_add_up_every_worker(tmp_path: Path) -> None:
    folder = tmp_path / "prometheus"
    folder.mkdir()
    (folder / "counter_1.db").write_bytes(b"stale")  # an earlier run's file: removed at start
    env = {"RECSYS_DATA_DIR": str(tmp_path / "data"), "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    series = 'recsys_http_requests_total{endpoint="<unmatched>",method="GET",status="404"}'
    with gunicorn(env, tmp_path / "gunicorn.log", workers=2) as base:
        n, writers = 0, set[str]()
        while len(writers) < 2 and n < 2000:  # parallel clients until both workers have served some
            with ThreadPoolExecutor(8) as pool:
                statuses = list(pool.map(lambda i: unmatched(base, i), range(n, n + 40)))
            assert statuses == [404] * 40, statuses
            n += 40
            writers = {p.stem.split("_")[-1] for p in folder.glob("counter_*.db")}
        assert len(writers) == 2, writers  # two workers recorded requests, and the stale file is gone
        assert [scrape_count(base, series) for _ in range(8)] == [float(n)] * 8
        os.kill(int(sorted(writers)[0]), signal.SIGTERM)  # a worker exits; gunicorn starts another
        deadline = time.monotonic() + READY_S
        while len({p.stem.split("_")[-1] for p in folder.glob("counter_*.db")}) < 3:
            try:
                call(base, "GET", "/healthz")
            except ConnectionError:  # the exiting worker dropped a connection it had accepted: try again
                time.sleep(0.1)
            assert time.monotonic() < deadline, "no replacement worker served a request"
        assert [scrape_count(base, series) for _ in range(4)] == [float(n)] * 4  # its counts still add up
        text = call(base, "GET", "/metrics")[2].decode()
    assert text.count('endpoint="<unmatched>"') >= 1 and "/nowhere/" not in text


def test_a_kept_alive_connection_carries_at_most_keepalive_requests(tmp_path: Path) -> None:
    """The ``serve.keepalive_requests``-th request on one connection is answered in full with ``Connection: close``
    and the server closes the connection; the client's next request goes on a new one (and is answered)."""
    env = {"RECSYS_DATA_DIR": str(tmp_path / "data"), "RECSYS_SERVE__KEEPALIVE_REQUESTS": "3"}
    with gunicorn(env, tmp_path / "gunicorn.log", workers=1, app="tests.slow_wsgi:app") as base:
        url = urlsplit(base)
        conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=CLIENT_TIMEOUT_S)
        try:
            answers = []
            for _ in range(3):
                conn.request("GET", "/test/slow?s=0")
                res = conn.getresponse()
                answers.append((res.status, res.getheader("Connection"), json.loads(res.read())))
                kept = conn.sock  # None once http.client saw "Connection: close" and closed its side
            assert answers == [(200, "keep-alive", {"slept": 0.0})] * 2 + [(200, "close", {"slept": 0.0})]
            assert kept is None
            conn.request("GET", "/test/slow?s=0")  # http.client opens a new connection
            assert conn.getresponse().status == 200
        finally:
            conn.close()
