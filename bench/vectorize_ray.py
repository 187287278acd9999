"""Benchmark: vectorize throughput of the Ray engine with 1 and 2 workers per encoder beside the local engine.

Prints figures (it is not a test). In one run, on one local Weaviate, each into a fresh collection: the local
engine, Ray with 1 worker, Ray with 2 workers, and the local engine again (the machine's load drifts; the baseline
is the mean of the two local runs). Every run loads its models inside the clock (the local engine in-process, each
Ray actor its own). The Ray runs share one local Ray (``--ray-cpus`` CPUs) started before the clock; its start
time is printed apart.

    .venv/bin/python bench/vectorize_ray.py                      # the fixtures (360 products)
    .venv/bin/python bench/vectorize_ray.py --products 1000      # a generated catalog
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from recommender import components
from recommender.config import Settings, load_settings
from recommender.store.ports import free_ports
from recommender.store.products import ProductStore
from recommender.store.server import LocalWeaviate
from recommender.synthetic.shop import generate_catalog
from recommender.vectorize.ray_engine import ray_session

REPO = Path(__file__).resolve().parents[1]


def timed_run(settings: Settings, catalog: Path, label: str) -> float:
    """One full vectorize run into a fresh collection; returns products/s over the run's wall time."""
    with ProductStore.open(settings.weaviate) as store:
        store.drop()
        job = components.vectorizer(settings, store, progress=False)
        t0 = time.perf_counter()
        summary = job.run(catalog)
        seconds = time.perf_counter() - t0
        store.drop()
    rate = summary.written / seconds
    print(f"{label}: {summary.written} products in {seconds:.1f}s = {rate:.2f} products/s | {summary.line()}",
          flush=True)
    return rate


def main() -> None:
    """Start a local Weaviate, run the engines in turn, print rates and ratios."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--products", type=int, default=0, help="a generated catalog of N products (0: the fixtures)")
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--ray-cpus", type=int, default=2)
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-ray-"))
    catalog = REPO / "fixtures"
    if args.products:
        catalog = work / f"catalog-{args.products}"
        if not catalog.exists():
            generate_catalog(catalog, n_products=args.products, n_shoppers=50, n_events=100, seed=11)
    base = load_settings(overrides={"data_dir": work / "data", "image_encoder.image_size": args.image_size,
                                    "vectorize.ray_num_cpus": args.ray_cpus})
    http_port, grpc_port = free_ports(2)
    server = LocalWeaviate(base.weaviate_binary, work / "weaviate", http_port=http_port, grpc_port=grpc_port)
    server.start()
    try:
        settings = replace(base, weaviate=replace(base.weaviate, http_port=server.http_port,
                                                  grpc_port=server.grpc_port, collection="BenchRay"))

        def engine(name: str, workers: int = 1) -> Settings:
            return replace(settings, vectorize=replace(settings.vectorize, engine=name, ray_workers=workers))

        first = timed_run(engine("local"), catalog, "local engine")
        t0 = time.perf_counter()
        with ray_session(settings.vectorize) as cpus:
            print(f"local Ray with {cpus:g} CPUs started in {time.perf_counter() - t0:.1f}s", flush=True)
            one = timed_run(engine("ray", 1), catalog, "ray, 1 worker per encoder")
            two = timed_run(engine("ray", 2), catalog, "ray, 2 workers per encoder")
        second = timed_run(engine("local"), catalog, "local engine again")
        local = (first + second) / 2
        print(f"local engine (mean of 2 runs) {local:.2f} products/s; ray 1 worker {one:.2f} ({one / local:.2f}x), "
              f"ray 2 workers {two:.2f} ({two / local:.2f}x); 2 vs 1 worker {two / one:.2f}x")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
