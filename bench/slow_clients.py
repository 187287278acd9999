"""Benchmark: /healthz and product-page latency with and without slow clients and an image-search burst.

Prints figures (it is not a test). In one run it starts a local Weaviate on free loopback ports, runs the nightly
`recsys refresh` on the fixtures once, then for each gunicorn worker setup (the old `sync` workers, plain
`gthread`, and the shipped `api.worker.GuardedThreadWorker`; 2 workers each, `gunicorn.conf.py` otherwise):
1. measures `GET /healthz` and `GET /v1/products/<id>/recommendations?k=10&explain=template` one at a time from
   127.0.0.1 (a 5 s client timeout; a timeout counts as a failure), bounded by a count and a time limit;
2. measures the same again under M clients sending photo searches back to back from 127.0.0.3 (no back-off), under
   N slowloris sockets from 127.0.0.2 (half-sent heads and bodies, one more byte each every half second), and
   under both at once;
3. prints p50/p99 of each, the both/quiet ratio, failures, and how many slowloris sockets the server closed.
Everything it starts is stopped in `finally` blocks; it binds loopback only.

    .venv/bin/python bench/slow_clients.py                       # 64 slowloris sockets, 8 image clients
    .venv/bin/python bench/slow_clients.py --slowloris 200 --image-clients 16 --modes guarded
"""

from __future__ import annotations

import argparse
import base64
import http.client
import io
import json
import random
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import api_load  # a sibling script (bench/ is on sys.path when run)
import numpy as np
from api_load import bench_weaviate, job_env, run_job
from PIL import Image

from recommender.catalog.reader import CatalogReader
from recommender.config import load_settings

REPO = Path(__file__).resolve().parents[1]
# sync needs --threads 1: gunicorn turns a sync worker with threads > 1 (the shipped config's 8) into gthread
MODES = {"sync": ["--worker-class", "sync", "--threads", "1"],
         "gthread": ["--worker-class", "gthread", "--threads", "8"],
         "guarded": []}  # guarded: the shipped gunicorn.conf.py as it is
CLIENT_TIMEOUT_S = 5.0
READY_S = 240.0


@dataclass(frozen=True)
class Latencies:
    """Successful request latencies (s) and failures of one measure."""

    ok: list[float]
    failed: int

    def cells(self) -> tuple[str, str]:
        if not self.ok:
            return "—", "—"
        ms = np.asarray(self.ok) * 1000
        return f"{np.percentile(ms, 50):.1f} ms", f"{np.percentile(ms, 99):.1f} ms"

    @property
    def total(self) -> int:
        return len(self.ok) + self.failed

    def p(self, q: float) -> float:
        return float(np.percentile(self.ok, q)) if self.ok else float("nan")


def request(port: int, method: str, path: str, body: bytes | None = None, source: str = "127.0.0.1") -> int:
    """One request on a fresh connection; its status (0 when it failed or timed out)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT_S, source_address=(source, 0))
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
        res = conn.getresponse()
        res.read()
        return res.status
    except OSError:
        return 0
    finally:
        conn.close()


def measure(port: int, paths: list[str], n: int, max_seconds: float) -> Latencies:
    """``n`` GETs one at a time, cycling through ``paths``, stopped after ``max_seconds``."""
    ok: list[float] = []
    failed = 0
    deadline = time.monotonic() + max_seconds
    for i in range(n):
        if time.monotonic() > deadline:
            break
        t0 = time.perf_counter()
        if request(port, "GET", paths[i % len(paths)]) == 200:
            ok.append(time.perf_counter() - t0)
        else:
            failed += 1
    return Latencies(ok, failed)


@contextmanager
def slowloris(port: int, n: int) -> Iterator[list[socket.socket]]:
    """``n`` half-sent requests (heads and bodies) from 127.0.0.2, one more byte each every half second."""
    stop = threading.Event()
    socks = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=CLIENT_TIMEOUT_S, source_address=("127.0.0.2", 0))
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: shop\r\nX-Padding: " if i % 2 else
                  b"POST /v1/search HTTP/1.1\r\nHost: shop\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 4096\r\n\r\n{\"text\": \"")
        socks.append(s)

    def drip() -> None:
        while not stop.wait(0.5):
            for s in socks:
                try:
                    s.send(b"a")
                except OSError:
                    continue  # closed by the server

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    try:
        yield socks
    finally:
        stop.set()
        thread.join()


@contextmanager
def photo_burst(port: int, clients: int, photo: bytes) -> Iterator[None]:
    """``clients`` threads from 127.0.0.3 sending photo searches back to back (no back-off on 429/503)."""
    stop = threading.Event()
    body = json.dumps({"image_base64": base64.b64encode(photo).decode(), "k": 10}).encode()

    def search() -> None:
        while not stop.is_set():
            request(port, "POST", "/v1/search", body, source="127.0.0.3")

    threads = [threading.Thread(target=search, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.0)  # let the burst take hold
        yield
    finally:
        stop.set()
        for t in threads:
            t.join(CLIENT_TIMEOUT_S + 1)


def noise_jpeg(side: int) -> bytes:
    """A photo-sized JPEG of random pixels (costly to decode and shrink, like a phone photo)."""
    pixels = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=90)
    return out.getvalue()


def closed_count(socks: list[socket.socket]) -> int:
    """How many slowloris sockets the server has closed (EOF, reset or a final response)."""
    closed = 0
    for s in socks:
        s.settimeout(0.05)
        try:
            data = s.recv(4096)
            closed += data == b"" or data.startswith(b"HTTP/1.1 408")
        except TimeoutError:
            continue
        except OSError:
            closed += 1
        finally:
            s.close()
    return closed


@contextmanager
def gunicorn(env: dict[str, str], extra: list[str], log: Path) -> Iterator[int]:
    """The shipped config with ``extra`` arguments, 2 workers, warm-up on; yields the port once ready."""
    with api_load.gunicorn({**env, "RECSYS_API__WARMUP": "true"}, 2, log, extra, probe="/readyz",
                           startup_s=READY_S) as (base, _):
        yield int(base.rsplit(":", 1)[1])


def run_mode(name: str, env: dict[str, str], args: argparse.Namespace, pages: list[str], photo: bytes,
             work: Path) -> list[str]:
    """Quiet, photo burst, slowloris, both: /healthz and product pages under each; the mode's table rows."""
    kinds = {"healthz": ["/healthz"], "page": pages}

    def both_measures() -> dict[str, Latencies]:
        return {kind: measure(port, paths, args.requests, args.max_seconds) for kind, paths in kinds.items()}

    with gunicorn(env, MODES[name], work / f"gunicorn-{name}.log") as port:
        measure(port, ["/healthz", *pages[:20]], 40, 30.0)  # warm caches and connections
        runs = {"quiet": both_measures()}
        with photo_burst(port, args.image_clients, photo):
            runs["burst"] = both_measures()
        with slowloris(port, args.slowloris) as socks:
            opened = time.monotonic()
            runs["slowloris"] = both_measures()
            with photo_burst(port, args.image_clients, photo):
                runs["both"] = both_measures()
            time.sleep(max(0.0, opened + args.close_wait - time.monotonic()))
            closed = closed_count(socks)
    rows = []
    for kind in kinds:
        quiet, both = runs["quiet"][kind], runs["both"][kind]
        cells = [" / ".join(runs[run][kind].cells()) for run in ("quiet", "burst", "slowloris", "both")]
        failed = " / ".join(f"{runs[run][kind].failed} of {runs[run][kind].total}"
                            for run in ("burst", "slowloris", "both"))
        rows.append(f"| {name} | {kind} | {' | '.join(cells)} | {both.p(50) / quiet.p(50):.1f}× / "
                    f"{both.p(99) / quiet.p(99):.1f}× | {failed} | {closed}/{args.slowloris} |")
    return rows


def main() -> None:
    """Start Weaviate, refresh the fixtures, measure each worker setup, print the table, stop everything."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--catalog", type=Path, default=REPO / "fixtures")
    ap.add_argument("--modes", default="sync,gthread,guarded", help=f"comma-separated, of {', '.join(MODES)}")
    ap.add_argument("--slowloris", type=int, default=64, help="half-sent requests held open")
    ap.add_argument("--image-clients", type=int, default=8, help="clients sending photo searches back to back")
    ap.add_argument("--requests", type=int, default=100, help="requests per measure")
    ap.add_argument("--max-seconds", type=float, default=15.0, help="time limit per measure")
    ap.add_argument("--close-wait", type=float, default=35.0,
                    help="seconds after opening the slowloris sockets to count those the server closed")
    ap.add_argument("--image-size", type=int, default=64, help="image tower input size")
    ap.add_argument("--photo-side", type=int, default=1000, help="side of the searched photo (px)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-slow-"))
    base = load_settings()
    with bench_weaviate(base, work / "weaviate", "BenchSlow") as settings:
        env = job_env(settings, args.catalog, work / "data", args.image_size)
        env.pop("RECSYS_SERVE__MAX_INFLIGHT_PER_IP", None)  # the shipped per-address cap, as deployed
        run_job(env, "refresh", "--catalog", str(args.catalog))
        ids = [p.product_id for p in CatalogReader(args.catalog)]
        pages = [f"/v1/products/{pid}/recommendations?k=10&explain=template"
                 for pid in random.Random(0).sample(ids, min(50, len(ids)))]
        photo = noise_jpeg(args.photo_side)
        print(f"{len(ids)} products; {args.slowloris} slowloris sockets, {args.image_clients} image clients "
              f"({args.photo_side}² JPEG, {len(photo) // 1024} KB); "
              f"{args.requests} requests per measure (one at a time, {CLIENT_TIMEOUT_S:.0f} s client timeout)")
        print("| workers | request | p50 / p99 quiet | photo burst | slowloris | both | both / quiet p50 / p99 | "
              "failed: burst / slowloris / both | slowloris closed |")
        print("|---|---|---|---|---|---|---|---|---|")
        for name in args.modes.split(","):
            for row in run_mode(name, env, args, pages, photo, work):
                print(row, flush=True)


if __name__ == "__main__":
    main()
