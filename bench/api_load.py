"""Benchmark: product-page recommendations under real gunicorn against a bare Weaviate near-vector query.

Prints figures (it is not a test). In one run it
1. starts a local Weaviate on free loopback ports and runs the nightly `recsys refresh` once (vectorize, ALS,
   learned fusion, precomputed product pages, publish), in a subprocess configured by env,
2. starts `gunicorn api.wsgi:app` (N workers) on a free loopback port,
3. load-tests `GET /v1/products/<random id>/recommendations?k=10&explain=template` from another process
   (threads with one requests.Session each, fixed concurrency, bounded by a request count and a time limit):
   anonymous (answered from the precomputed list), with a `user_id` that has history (personalised), and the
   shopper's "for you" list `GET /v1/users/<id>/recommendations`; then the anonymous and the personalised page at
   concurrency 1 (service time without queueing for the workers),
4. measures a bare `ProductStore.near_vector` query of the same k with each product's own `text` vector (threads in
   this process, same concurrency and bounds) right before each round of the API loads (``--rounds``, 3), and reports
   the median over the rounds of p50(API)/p50(bare): a busy neighbour on the machine moves both sides of a ratio,
5. reads each worker's VmRSS and whether torch is mapped, then sends one search request (which loads the text
   model lazily in the worker that serves it) and reads them again, for comparison.
Everything it starts is stopped in `finally` blocks; it binds loopback only.

    .venv/bin/python bench/api_load.py                      # the fixtures
    .venv/bin/python bench/api_load.py --catalog /tmp/cat100k --requests 5000
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import requests

from recommender.catalog.reader import CatalogReader
from recommender.config import Settings, load_settings
from recommender.events.log import EventReader, find_events_file
from recommender.store.ports import free_port, free_ports
from recommender.store.products import ProductStore
from recommender.store.server import LocalWeaviate

REPO = Path(__file__).resolve().parents[1]
STARTUP_S = 120.0
PERSONAL = ("pool", "live")  # where a shopper's product page or "for you" list may be served from


@dataclass(frozen=True)
class LoadResult:
    """Latencies (s) of successful calls, the error count and the wall time of one load run."""

    latencies: list[float]
    errors: int
    seconds: float

    def line(self, name: str) -> str:
        ms = np.asarray(self.latencies) * 1000 if self.latencies else np.zeros(1)
        return (f"{name}: {len(self.latencies)} ok, {self.errors} errors in {self.seconds:.1f}s -> "
                f"{len(self.latencies) / self.seconds:.0f} req/s, p50 {np.percentile(ms, 50):.1f} ms, "
                f"p99 {np.percentile(ms, 99):.1f} ms, max {ms.max():.1f} ms")

    def p50(self) -> float:
        return float(np.percentile(self.latencies, 50))


def run_load(call: Callable[[int], bool], n: int, concurrency: int, max_seconds: float) -> LoadResult:
    """Run ``call(i)`` for i < n on ``concurrency`` threads, stopping early after ``max_seconds``."""
    counter = iter(range(n))
    lock = threading.Lock()
    deadline = time.monotonic() + max_seconds
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors = [0] * concurrency

    def worker(slot: int) -> None:
        while time.monotonic() < deadline:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            t0 = time.perf_counter()
            ok = call(i)
            if ok:
                latencies[slot].append(time.perf_counter() - t0)
            else:
                errors[slot] += 1

    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(worker, range(concurrency)))
    return LoadResult([x for lat in latencies for x in lat], sum(errors), time.perf_counter() - t0)


def http_load(base: str, ids: list[str], n: int, concurrency: int, max_seconds: float, seed: int,
              users: list[str] | None = None, served_from: Sequence[str] = (), for_you: bool = False) -> LoadResult:
    """The API load generator (runs in its own process): one requests.Session per thread, random product ids
    (and random shoppers when ``users`` is given; with ``for_you``, the shopper's "for you" route instead of a product
    page); a call counts as ok when it is a 200 with items (served from one of ``served_from`` when given)."""
    local = threading.local()
    rng = random.Random(seed)
    picks = [rng.choice(ids) for _ in range(n)]
    shoppers = [rng.choice(users) for _ in range(n)] if users else None

    def call(i: int) -> bool:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        params: dict[str, str | int] = {"k": 10, "explain": "template"}
        if for_you and shoppers:
            url = f"{base}/v1/users/{shoppers[i]}/recommendations"
        else:
            url = f"{base}/v1/products/{picks[i]}/recommendations"
            if shoppers:
                params["user_id"] = shoppers[i]
        try:
            res = local.session.get(url, params=params, timeout=10)
            body = res.json()
            return res.status_code == 200 and len(body["items"]) > 0 and \
                (not served_from or body["served_from"] in served_from)
        except (requests.RequestException, ValueError, KeyError):
            return False

    return run_load(call, n, concurrency, max_seconds)


def bare_load(store: ProductStore, vectors: dict[str, np.ndarray], n: int, concurrency: int,
              max_seconds: float, seed: int) -> LoadResult:
    """The bare Weaviate measure: near_vector on each product's own text vector, k=10, ids only."""
    rng = random.Random(seed)
    ids = list(vectors)
    picks = [rng.choice(ids) for _ in range(n)]

    def call(i: int) -> bool:
        return len(store.near_vector(vectors[picks[i]], "text", k=10, properties=[])) == 10

    return run_load(call, n, concurrency, max_seconds)


def job_env(settings: Settings, catalog: Path, data_dir: Path, image_size: int) -> dict[str, str]:
    """Environment configuring the jobs and the API for the bench server, collection and data dir."""
    ws = settings.weaviate
    return dict(os.environ, RECSYS_WEAVIATE__HOST=ws.host, RECSYS_WEAVIATE__HTTP_PORT=str(ws.http_port),
                RECSYS_WEAVIATE__GRPC_PORT=str(ws.grpc_port), RECSYS_WEAVIATE__COLLECTION=ws.collection,
                RECSYS_DATA_DIR=str(data_dir), RECSYS_API__CATALOG_DIR=str(catalog.resolve()),
                RECSYS_IMAGE_ENCODER__IMAGE_SIZE=str(image_size), RECSYS_RANKING__RELOAD_INTERVAL_S="3600",
                RECSYS_COLLABORATIVE__THREADS="1",
                RECSYS_SERVE__MAX_INFLIGHT_PER_IP="64",  # one load generator stands for many shoppers
                RECSYS_LIMITS__ENABLED="false",  # one loopback client measures throughput, not the rate limits
                TOKENIZERS_PARALLELISM="false")


def run_job(env: dict[str, str], *args: str) -> None:
    """One `recsys` subcommand; its summary line is echoed, a failure stops the bench."""
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "jobs.cli", *args, "--no-progress"], cwd=REPO, env=env,
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"recsys {args[0]} failed ({out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}")
    last = (out.stdout.strip() or out.stderr.strip()).splitlines()[-1:]
    print(f"recsys {args[0]} ({time.perf_counter() - t0:.1f}s): {' '.join(last)}")


@contextmanager
def bench_weaviate(base: Settings, folder: Path, collection: str) -> Iterator[Settings]:
    """A local Weaviate for one bench run, stopped afterwards; yields ``base`` pointed at it and ``collection``."""
    http_port, grpc_port = free_ports(2)
    server = LocalWeaviate(base.weaviate_binary, folder, http_port=http_port, grpc_port=grpc_port)
    server.start()
    try:
        yield replace(base, weaviate=replace(base.weaviate, host="127.0.0.1", http_port=server.http_port,
                                             grpc_port=server.grpc_port, collection=collection))
    finally:
        server.stop()


@contextmanager
def gunicorn(env: dict[str, str], workers: int, log: Path, extra: Sequence[str] = (), probe: str = "/healthz",
             startup_s: float = STARTUP_S) -> Iterator[tuple[str, int]]:
    """`gunicorn api.wsgi:app` (the shipped config, plus ``extra`` arguments) on a free loopback port; yields
    (base URL, master pid) once ``probe`` answers 200."""
    port = free_port("127.0.0.1")
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "--bind",
                                 f"127.0.0.1:{port}", "--workers", str(workers), *extra, "api.wsgi:app"], cwd=REPO,
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_s
        while not _answers(base + probe):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"gunicorn not up ({proc.poll()}):\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield base, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def worker_pids(master: int) -> list[int]:
    """The gunicorn master's child processes (its workers), from /proc."""
    children: list[int] = []
    for task in Path(f"/proc/{master}/task").iterdir():
        children += [int(p) for p in (task / "children").read_text().split()]
    return sorted(children)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def torch_mapped(pid: int) -> bool:
    """Whether torch's native library is mapped into the process (i.e. an encoder was imported)."""
    return "libtorch_cpu" in Path(f"/proc/{pid}/maps").read_text()


def report_workers(master: int, label: str) -> dict[int, float]:
    rss = {pid: rss_mb(pid) for pid in worker_pids(master)}
    for pid, mb in rss.items():
        print(f"  worker {pid} {label}: VmRSS {mb:.0f} MB, torch mapped: {torch_mapped(pid)}")
    return rss


def text_vectors(store: ProductStore, ids: list[str]) -> dict[str, np.ndarray]:
    """Each product's own text vector (products without one are left out)."""
    out: dict[str, np.ndarray] = {}
    for i in range(0, len(ids), 200):
        for pid, named in store.vectors(ids[i:i + 200], names=("text",)).items():
            if named.get("text") is not None:
                out[pid] = np.asarray(named["text"], dtype=np.float32)
    return out


LOADS = (  # name, shoppers?, served from, "for you" route?, label
    ("anonymous", False, ("precomputed",), False,
     "API  GET /v1/products/<id>/recommendations?k=10&explain=template, anonymous (precomputed list)"),
    ("personalised", True, PERSONAL, False, "API  same with a user_id with history (personalised: pool or live)"),
    ("for you", True, PERSONAL, True, "API  GET /v1/users/<id>/recommendations?k=10&explain=template (for you)"))


def load_round(loader: ProcessPoolExecutor, base: str, store: ProductStore, vectors: dict[str, np.ndarray],
               args: argparse.Namespace, ids: list[str], users: list[str], r: int) -> dict[str, LoadResult]:
    """One round at full concurrency: the bare query, then each API load right after it (each ratio is taken
    between measures seconds apart, so a change in the machine's other load moves both sides)."""
    out = {"bare": bare_load(store, vectors, args.requests, args.concurrency, args.max_seconds, 10 * r + 2)}
    for name, personal, served, for_you, _ in LOADS:
        out[name] = loader.submit(http_load, base, ids, args.requests, args.concurrency,
                                  args.max_seconds, 10 * r + 4, users if personal else None, served,
                                  for_you).result()
    return out


def report_rounds(rounds: list[dict[str, LoadResult]], args: argparse.Namespace) -> None:
    """Each round's lines, then per load: all rounds' latencies pooled, and the median of the rounds' p50 ratios."""
    for r, results in enumerate(rounds):
        print(f"round {r + 1}: " + ", ".join(f"{name} p50 {res.p50() * 1000:.1f} ms" for name, res in results.items()))
    pooled = {name: LoadResult([x for res in rounds for x in res[name].latencies],
                               sum(res[name].errors for res in rounds), sum(res[name].seconds for res in rounds))
              for name in rounds[0]}
    for name, *_, label in LOADS:
        print(pooled[name].line(f"{label} ({args.workers} workers, {len(rounds)} rounds pooled)"))
    print(pooled["bare"].line(f"bare ProductStore.near_vector(text, k=10, ids only) ({len(rounds)} rounds pooled)"))
    for name, p99_goal in (("anonymous", 100), ("personalised", 80), ("for you", 80)):
        ratios = [res[name].p50() / res["bare"].p50() for res in rounds]
        print(f"{name}: p50(API)/p50(bare) at concurrency {args.concurrency} = {float(np.median(ratios)):.2f}x "
              f"median of rounds {', '.join(f'{x:.2f}' for x in ratios)} (goal <= 3x); "
              f"p99(API) {np.percentile(pooled[name].latencies or [0], 99) * 1000:.1f} ms (goal < {p99_goal} ms)")


def measure(args: argparse.Namespace, settings: Settings, env: dict[str, str], ids: list[str], users: list[str],
            work: Path) -> None:
    """Gunicorn up; ``--rounds`` interleaved rounds of the bare query and the API loads (the API from a separate
    process, the bare query in-process); then one client at a time; worker memory."""
    with gunicorn(env, args.workers, work / "gunicorn.log", startup_s=args.startup_s) as (base, master), \
            ProductStore.open(settings.weaviate) as store, \
            ProcessPoolExecutor(1, mp_context=get_context("spawn")) as loader:
        vectors = text_vectors(store, ids[:args.bare_products])
        bare_load(store, vectors, args.warmup, args.concurrency, 60.0, 1)
        loader.submit(http_load, base, ids, args.warmup, args.concurrency, 60.0, 1).result()  # warm-up
        rounds = [load_round(loader, base, store, vectors, args, ids, users, r) for r in range(args.rounds)]
        # one client at a time: the per-request service time, without queueing for the workers
        serial = loader.submit(http_load, base, ids, args.serial_requests, 1, args.max_seconds, 3,
                               None, ("precomputed",)).result()
        live_serial = loader.submit(http_load, base, ids, args.serial_requests, 1, args.max_seconds, 6,
                                    users, PERSONAL).result()
        bare_serial = bare_load(store, vectors, args.serial_requests, 1, args.max_seconds, 3)
        report_rounds(rounds, args)
        print(serial.line("API  anonymous at concurrency 1 (service time, no queueing)"))
        print(live_serial.line("API  personalised at concurrency 1"))
        print(bare_serial.line("bare same query at concurrency 1"))
        print(f"anonymous at concurrency 1: p50(API)/p50(bare) = {serial.p50() / bare_serial.p50():.2f}x")
        print(f"personalised at concurrency 1: p50(API)/p50(bare) = {live_serial.p50() / bare_serial.p50():.2f}x")
        if args.skip_search:
            return
        print("gunicorn workers after the recommendation load:")
        report_workers(master, "after recommendations")
        res = requests.post(f"{base}/v1/search", json={"text": "blue jeans", "k": 5}, timeout=120)
        print(f"one POST /v1/search (lazy text model load in the worker serving it): HTTP {res.status_code}")
        report_workers(master, "after one search")


def page_routes(rng: random.Random, ids: Sequence[str], users: Sequence[str]) -> dict[str, Callable[[], str]]:
    """Per route of the in-process benches (anonymous, personalised, "for you"), a maker of its next random URL."""
    page = "/v1/products/{}/recommendations?k=10&explain=template"
    return {"anonymous": lambda: page.format(rng.choice(ids)),
            "personalised": lambda: page.format(rng.choice(ids)) + f"&user_id={rng.choice(users)}",
            "for you": lambda: f"/v1/users/{rng.choice(users)}/recommendations?k=10&explain=template"}


def shoppers(catalog: Path, n: int = 500) -> list[str]:
    """Users with events in the catalog's events file (their product pages are ranked live)."""
    path = find_events_file(catalog)
    if path is None:
        return []
    users = list(dict.fromkeys(e.user_id for e in EventReader(path)))
    return users[:n]


def main() -> None:
    """Start Weaviate, vectorize + train, measure, print, stop everything."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--catalog", type=Path, default=REPO / "fixtures", help="catalog folder (default: fixtures)")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the bare query and the API loads")
    ap.add_argument("--requests", type=int, default=2000, help="requests per measure")
    ap.add_argument("--serial-requests", type=int, default=300, help="API requests at concurrency 1")
    ap.add_argument("--warmup", type=int, default=100, help="requests per measure before the clock starts")
    ap.add_argument("--max-seconds", type=float, default=60.0, help="time limit per measure")
    ap.add_argument("--bare-products", type=int, default=2000, help="products whose text vector the bare query uses")
    ap.add_argument("--image-size", type=int, default=64, help="image tower input size for vectorizing (speed)")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--startup-s", type=float, default=STARTUP_S, help="how long gunicorn may take to answer")
    ap.add_argument("--skip-refresh", action="store_true",
                    help="reuse the data and store of an earlier run with the same --workdir (no refresh)")
    ap.add_argument("--skip-search", action="store_true", help="skip the search request and its memory figures")
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-api-"))
    base = load_settings()
    with bench_weaviate(base, work / "weaviate", "BenchApi") as settings:
        env = job_env(settings, args.catalog, work / "data", args.image_size)
        if not args.skip_refresh:
            run_job(env, "refresh", "--catalog", str(args.catalog))
        ids = [p.product_id for p in CatalogReader(args.catalog)]
        print(f"catalog {args.catalog}: {len(ids)} products; concurrency {args.concurrency}, "
              f"{args.requests} requests or {args.max_seconds:.0f}s per measure")
        measure(args, settings, env, ids, shoppers(args.catalog), work)


if __name__ == "__main__":
    main()
