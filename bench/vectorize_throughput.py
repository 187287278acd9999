"""Benchmark: does the vectorize job keep the encoders busy, and does its memory stay flat?

Prints figures (it is not a test). In one run it measures
1. the raw encoders on pre-decoded inputs (texts already built; images already decoded and preprocessed),
2. the full job on a generated catalog (read → load/decode → encode → write to a real local Weaviate),
and reports job products/s against the encoders' own rate: ratio = job rate / (1 / (1/text + 1/image)).
With --rss-sizes it runs the job in a fresh process per catalog size and reports peak RSS.

    .venv/bin/python bench/vectorize_throughput.py --products 2000 --rss-sizes 10000,100000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from recommender.catalog.images import ImageLimits, decode_image, read_image_bytes
from recommender.catalog.reader import CatalogReader
from recommender.config import Settings, load_settings
from recommender.encoders.image import OpenClipImageEncoder
from recommender.encoders.text import SentenceTransformerEncoder
from recommender.store.ports import free_ports
from recommender.store.products import ProductStore
from recommender.store.server import LocalWeaviate
from recommender.synthetic.shop import generate_catalog
from recommender.vectorize import Vectorizer


def raw_rates(settings: Settings, catalog: Path, n: int) -> tuple[float, float]:
    """Encoder-only products/s for text and image, on inputs prepared before the clock starts."""
    products = [p for _, p in zip(range(n), CatalogReader(catalog), strict=False)]
    text_enc = SentenceTransformerEncoder(settings.text_encoder)
    image_enc = OpenClipImageEncoder(settings.image_encoder)
    texts = [p.text_for_embedding() for p in products]
    limits = ImageLimits()
    tensors = [image_enc.preprocess(decode_image(read_image_bytes(p.image or "", catalog, limits), limits))
               for p in products]
    text_enc.encode_batch(texts[:8])  # warm-up: first call allocates
    image_enc.encode_prepared(tensors[:8])
    t0 = time.perf_counter()
    for i in range(0, n, settings.vectorize.chunk_size):
        text_enc.encode_batch(texts[i:i + settings.vectorize.chunk_size])
    t1 = time.perf_counter()
    for i in range(0, n, settings.vectorize.chunk_size):
        image_enc.encode_prepared(tensors[i:i + settings.vectorize.chunk_size])
    t2 = time.perf_counter()
    return n / (t1 - t0), n / (t2 - t1)


def job_run(settings: Settings, catalog: Path) -> dict[str, float]:
    """One full vectorize run into a fresh collection; returns counts and seconds."""
    with ProductStore.open(settings.weaviate) as store:
        store.drop()
        job = Vectorizer(store, SentenceTransformerEncoder(settings.text_encoder),
                         OpenClipImageEncoder(settings.image_encoder), settings.vectorize, progress=False)
        # warm the models outside the clock, as the raw measure does
        job.text_encoder.encode_batch(["warm up"])
        job.image_encoder.dim  # noqa: B018 - property access loads the tower
        t0 = time.perf_counter()
        summary = job.run(catalog)
        seconds = time.perf_counter() - t0
        store.drop()
    print(summary.line())
    return {"products": summary.written, "seconds": seconds, **{f"stage_{k}": v for k, v in summary.seconds.items()}}


def peak_rss_mb(settings: Settings, catalog: Path) -> float:
    """Peak RSS (MB) of a fresh process that vectorizes the catalog."""
    code = ("import sys, resource; from bench.vectorize_throughput import _child; _child(sys.argv[1]); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    env_settings = json.dumps({"collection": settings.weaviate.collection + "Rss",
                               "http_port": settings.weaviate.http_port, "grpc_port": settings.weaviate.grpc_port,
                               "image_size": settings.image_encoder.image_size})
    out = subprocess.run([sys.executable, "-c", code, str(catalog), env_settings], check=True,
                         capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    return int(out.stdout.strip().splitlines()[-1]) / 1024


def _child(catalog: str) -> None:
    cfg = json.loads(sys.argv[2])
    settings = load_settings(overrides={"weaviate.collection": cfg["collection"], "weaviate.http_port":
                                        cfg["http_port"], "weaviate.grpc_port": cfg["grpc_port"],
                                        "image_encoder.image_size": cfg["image_size"]})
    with ProductStore.open(settings.weaviate) as store:
        store.drop()
        Vectorizer(store, SentenceTransformerEncoder(settings.text_encoder),
                   OpenClipImageEncoder(settings.image_encoder), settings.vectorize, progress=False).run(Path(catalog))
        store.drop()


def main() -> None:
    """Generate catalogs, start a local Weaviate, measure, print."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--products", type=int, default=2000, help="catalog size for the throughput run")
    ap.add_argument("--raw-sample", type=int, default=512, help="products for the raw encoder measure")
    ap.add_argument("--rss-sizes", default="", help="comma-separated catalog sizes for peak RSS")
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-vectorize-"))
    base = load_settings()
    http_port, grpc_port = free_ports(2)
    server = LocalWeaviate(base.weaviate_binary, work / "weaviate", http_port=http_port, grpc_port=grpc_port)
    server.start()
    try:
        settings = replace(base, weaviate=replace(base.weaviate, http_port=server.http_port,
                                                  grpc_port=server.grpc_port, collection="Bench"))
        catalog = work / f"catalog-{args.products}"
        if not catalog.exists():
            generate_catalog(catalog, n_products=args.products, n_shoppers=50, n_events=100, seed=11)
        # raw rates measured before and after the job and averaged: the machine's load drifts meanwhile
        before = raw_rates(settings, catalog, min(args.raw_sample, args.products))
        job = job_run(settings, catalog)
        after = raw_rates(settings, catalog, min(args.raw_sample, args.products))
        text_rate, image_rate = (before[0] + after[0]) / 2, (before[1] + after[1]) / 2
        ideal = 1 / (1 / text_rate + 1 / image_rate)
        rate = job["products"] / job["seconds"]
        busy = (job.get("stage_encode_text", 0.0) + job.get("stage_encode_image", 0.0)) / job["seconds"]
        print(f"raw encoders (pre-decoded inputs): text {text_rate:.1f}/s, image {image_rate:.1f}/s, "
              f"both in series {ideal:.1f} products/s")
        print(f"vectorize job on {args.products} products: {rate:.1f} products/s "
              f"({job['seconds']:.1f}s) -> ratio to raw encoders {rate / ideal:.2f}; "
              f"encoders busy {busy:.0%} of the job's wall time")
        for size in [int(s) for s in args.rss_sizes.split(",") if s]:
            cat = work / f"catalog-{size}"
            if not cat.exists():
                generate_catalog(cat, n_products=size, n_shoppers=50, n_events=100, seed=12)
            t0 = time.perf_counter()
            rss = peak_rss_mb(settings, cat)
            print(f"peak RSS vectorizing {size} products: {rss:.0f} MB ({time.perf_counter() - t0:.0f}s)")
    finally:
        server.stop()
    print(f"bench process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
