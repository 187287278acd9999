"""Benchmark: CPU per request and store round trips of the recommendation routes, in-process, by phase.

Prints figures (it is not a test). On the data and store of an earlier `bench/api_load.py --workdir DIR` run (its
refreshed release), it starts that Weaviate again, builds the app with `create_app` and sends requests through
Flask's test client in this process (no HTTP, one thread): anonymous and personalised product pages and "for you",
warmed first, then timed with CPU time (`time.process_time`, all threads of this process: robust to other load on
the machine, unlike wall time). It wraps the phases (the shopper's events, the candidate sources, the features, the
model, the explanations, the body) and counts the store's round trips per request and the wall time they took;
`--cprofile` also prints each route's cProfile top functions. BLAS runs on one thread, as in a gunicorn worker.

With ``--running HTTP:GRPC`` it uses a Weaviate that is already running on loopback instead, e.g. the shop of a
running `bench/shop_scale.py` (its ports are in the size's ``steps.json``, ``weaviate_ports``; collection ``Shop``).

    .venv/bin/python bench/api_load.py --workdir /tmp/api && .venv/bin/python bench/api_profile.py --workdir /tmp/api
    .venv/bin/python bench/api_profile.py --workdir S/n100000 --catalog S/n100000/catalog --collection Shop \
        --running 50713:55645 --warmup 30 --requests 150
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from api_load import REPO, bench_weaviate, job_env, page_routes, shoppers
from threadpoolctl import threadpool_limits

import api.recommendations as routes
from recommender.catalog.reader import CatalogReader
from recommender.config import Settings, load_settings
from recommender.ranking import ranker, service
from recommender.ranking.features import FeatureBuilder
from recommender.ranking.fusion import FusionModel
from recommender.ranking.ltr import TreeRanker
from recommender.store.products import ProductStore

CPU: dict[str, float] = defaultdict(float)
CALLS: Counter[str] = Counter()
STORE_WALL: dict[str, float] = defaultdict(float)


def timed(owner: Any, name: str, label: str) -> None:
    """Add the CPU time of ``owner.name`` to CPU[label]."""
    inner = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.process_time()
        try:
            return inner(*args, **kwargs)
        finally:
            CPU[label] += time.process_time() - started

    setattr(owner, name, wrapper)


def counted(name: str) -> None:
    """Count the calls of ``ProductStore.name`` (one round trip each)."""
    inner = getattr(ProductStore, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        CALLS[name] += 1
        started = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            STORE_WALL[name] += time.perf_counter() - started

    setattr(ProductStore, name, wrapper)


PHASES: tuple[tuple[Any, str, str], ...] = (
    (service.RecommendationService, "shopper", "shopper's events"), (ranker.FusionRanker, "rank", "rank (all)"),
    (ranker.FusionRanker, "propose", "  candidate sources"), (FeatureBuilder, "rows", "  features"),
    (TreeRanker, "predict", "  model scores"), (FusionModel, "predict", "  model scores"),
    (TreeRanker, "contributions", "  model contributions (shown items)"),
    (FusionModel, "contributions", "  model contributions (shown items)"),
    (ranker, "signal_breakdown", "  signal breakdown"), (routes, "_body", "body (all)"),
    (routes, "explain_items", "  explanations"), (routes, "jsonify", "  jsonify"))
ORDER = tuple(dict.fromkeys(label for _, _, label in PHASES))


def instrument() -> None:
    """Wrap the phases and the store calls."""
    for owner, name, label in PHASES:
        timed(owner, name, label)
    for name in ("near_vector", "items", "vectors", "get", "records", "hybrid"):
        counted(name)


def main() -> None:
    """Start the workdir's Weaviate, warm up, measure each route, print."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", type=Path, required=True, help="the --workdir of an earlier bench/api_load.py run")
    ap.add_argument("--catalog", type=Path, default=REPO / "fixtures")
    ap.add_argument("--requests", type=int, default=400, help="timed requests per route")
    ap.add_argument("--warmup", type=int, default=600, help="requests per route before the clock starts")
    ap.add_argument("--cprofile", action="store_true", help="also print each route's cProfile top functions")
    ap.add_argument("--collection", default="BenchApi", help="the collection (bench/shop_scale.py's: Shop)")
    ap.add_argument("--running", default=None, metavar="HTTP:GRPC", help="use a Weaviate running on these ports")
    args = ap.parse_args()
    instrument()
    with weaviate(args) as settings:
        os.environ.update(job_env(settings, args.catalog, args.workdir / "data", 64))
        from api.app import create_app

        threadpool_limits(1, "blas")  # as api.wsgi does in each gunicorn worker
        app = create_app(load_settings())
        client = app.test_client()
        ids = [p.product_id for p in CatalogReader(args.catalog)]
        users = shoppers(args.catalog)
        rng = random.Random(0)
        routes_ = page_routes(rng, ids, users)
        for url in [make() for make in routes_.values() for _ in range(args.warmup)]:
            assert client.get(url).status_code == 200, url
        try:
            for name, make in routes_.items():
                measure(client, name, [make() for _ in range(args.requests)], args.cprofile)
        finally:
            app.extensions["recsys"].close()


@contextmanager
def weaviate(args: argparse.Namespace) -> Iterator[Settings]:
    """The workdir's Weaviate, started for this run, or the running one ``--running`` names."""
    base = load_settings()
    if args.running is None:
        with bench_weaviate(base, args.workdir / "weaviate", args.collection) as settings:
            yield settings
        return
    http, grpc = (int(port) for port in args.running.split(":"))
    yield replace(base, weaviate=replace(base.weaviate, host="127.0.0.1", http_port=http, grpc_port=grpc,
                                         collection=args.collection))


def measure(client: Any, name: str, urls: list[str], profile: bool) -> None:
    """Time one route's requests and print its phases."""
    CPU.clear()
    CALLS.clear()
    STORE_WALL.clear()
    served: Counter[str] = Counter()
    started, wall = time.process_time(), time.perf_counter()
    for url in urls:
        served[client.get(url).json["served_from"]] += 1
    n = len(urls)
    print(f"{name}: {(time.process_time() - started) / n * 1000:.2f} ms CPU per request "
          f"({(time.perf_counter() - wall) / n * 1000:.2f} ms wall), served from {dict(served)}, store round trips "
          f"per request {({k: v / n for k, v in CALLS.items()} or 0)}, waiting for them "
          f"{sum(STORE_WALL.values()) / n * 1000:.2f} ms wall")
    for label in ORDER:
        if label in CPU:
            print(f"  {label:38s} {CPU[label] / n * 1000:6.2f} ms")
    if profile:
        prof = cProfile.Profile()
        prof.enable()
        for url in urls:
            client.get(url)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
