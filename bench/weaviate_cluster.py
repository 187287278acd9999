"""Benchmark: a local 3-node Weaviate cluster beside a single node, vector compression, and a lost node.

Prints figures (it is not a test). In one run, on loopback, with the source-built server:
1. **latency** — the fixture catalog is vectorized (real encoders) into a single node, copied with its vectors
   into a 3-node cluster (replication factor 3, QUORUM reads), and the same requests are timed on both: a bare
   ``ProductStore.near_vector`` (k=10, each product's own text vector) and the product page
   ``GET /v1/products/<id>/recommendations?k=10`` through the Flask app in this process (ranked live with a
   fitted ALS model), sequentially; p50/p95 and the cluster/single ratio;
2. **compression** — for each of none / rq / bq / pq on all three named vectors, a fresh single node takes
   ``--objects`` products with random vectors of the real dimensions (text 384, image 384, behavior 32; PQ trains on
   the first quarter); memory is the server process's anonymous resident memory (RssAnon, /proc: heap, vector
   cache, graph; not the file pages it maps) right after a restart on the loaded data (write buffers flushed, the
   vector cache prefilled) minus the same after a restart on the empty collection, extrapolated linearly to
   100,000 products; recall@10 of ``--queries`` text queries (stored vectors plus noise) against the exact cosine
   top 10 (numpy), beside the uncompressed index;
3. **lost node** — with a bounded query loop running against the cluster through a failover store, node 1 is
   SIGKILLed: time to the first answer after the kill, the slowest call, when the survivors report the node
   not HEALTHY (/v1/nodes); writes during the outage; after a restart, time to ready and until the node's own
   replica holds those writes.

    .venv/bin/python bench/weaviate_cluster.py [--objects 10000] [--queries 200] [--requests 200]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path

import numpy as np
import requests

from api.app import create_app
from recommender.catalog.fingerprints import Fingerprints
from recommender.catalog.reader import load_catalog
from recommender.config import ApiSettings, RankingSettings, Settings, WeaviateSettings
from recommender.domain import Product
from recommender.encoders.image import OpenClipImageEncoder
from recommender.encoders.text import SentenceTransformerEncoder
from recommender.store.cluster import LocalCluster
from recommender.store.ports import free_port_runs, free_ports
from recommender.store.products import ProductStore
from recommender.store.schema import StoredProduct, product_from_properties, product_uuid
from recommender.store.server import LocalWeaviate
from recommender.vectorize import Vectorizer
from tests.recsys_data import trained_data_dir

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "fixtures"
DIMS = {"text": 384, "image": 384, "behavior": 32}
BINARY = Settings().weaviate_binary


def percentiles(seconds: list[float]) -> str:
    """p50 / p95 in milliseconds."""
    ms = np.asarray(seconds) * 1000
    return f"p50 {np.percentile(ms, 50):6.1f} ms  p95 {np.percentile(ms, 95):6.1f} ms"


def timed(calls: int, call: object) -> list[float]:
    """Durations of ``calls`` sequential calls of ``call(i)``."""
    out = []
    for i in range(calls):
        started = time.perf_counter()
        call(i)  # type: ignore[operator]
        out.append(time.perf_counter() - started)
    return out


def single_node(root: Path, env: dict[str, str] | None = None) -> LocalWeaviate:
    """A fresh single-node server on free ports under ``root``."""
    http, grpc = free_ports(2)
    return LocalWeaviate(BINARY, root / "data", http_port=http, grpc_port=grpc, startup_timeout_s=180,
                         log_path=root / "weaviate.log", extra_env={"GOMAXPROCS": "1", **(env or {})})


def local_settings(server: LocalWeaviate, **kw: object) -> WeaviateSettings:
    """Client settings for one local server."""
    return WeaviateSettings(host=server.host, http_port=server.http_port, grpc_port=server.grpc_port,
                            query_timeout_s=30, **kw)  # type: ignore[arg-type]


def page_latency(weaviate: WeaviateSettings, data_dir: Path, ids: list[str], n: int) -> list[float]:
    """Sequential product pages through the Flask app (live ranking: no release is published)."""
    app = create_app(Settings(data_dir=data_dir, weaviate=weaviate, api=ApiSettings(catalog_dir=FIXTURES),
                              ranking=RankingSettings(reload_interval_s=3600)))
    client = app.test_client()
    try:
        client.get(f"/v1/products/{ids[0]}/recommendations?k=10")  # connect, load the model
        def call(i: int) -> None:
            res = client.get(f"/v1/products/{ids[i % len(ids)]}/recommendations?k=10")
            assert res.status_code == 200, res.get_json()
        return timed(n, call)
    finally:
        app.extensions["recsys"].close()


def query_latency(weaviate: WeaviateSettings, vectors: dict[str, np.ndarray], n: int) -> list[float]:
    """Sequential near-vector queries (k=10) with products' own text vectors."""
    keys = sorted(vectors)
    with ProductStore.open(weaviate) as store:
        store.near_vector(vectors[keys[0]], "text", 10)
        return timed(n, lambda i: store.near_vector(vectors[keys[i % len(keys)]], "text", 10, properties=[]))


def latency(root: Path, cluster: LocalCluster, requests_n: int) -> WeaviateSettings:
    """Part 1; returns the cluster collection's settings (used by part 3)."""
    catalog = load_catalog(FIXTURES).products
    ids = [p.product_id for p in catalog]
    data_dir = root / "recs"
    trained_data_dir(data_dir, FIXTURES)
    with single_node(root / "single") as server:
        one = local_settings(server, collection="Bench")
        with ProductStore.open(one, job=True) as store:
            text, image = SentenceTransformerEncoder(Settings().text_encoder), OpenClipImageEncoder(
                Settings().image_encoder)
            Vectorizer(store, text, image, Settings().vectorize, progress=False).run(FIXTURES)
            items = store.items(ids)
        many = cluster.client_settings(replace(one, replication_factor=3, async_replication=True,
                                               retry_window_s=120, job_timeout_s=60))
        with ProductStore.open(many, job=True) as store:
            store.ensure_collection()
            store.upsert([StoredProduct(product_from_properties(props), Fingerprints(
                str(props["fp_text"]), str(props["fp_image"]), str(props["fp_properties"])), vecs)
                for props, vecs in items.values()])
        text_vectors = {pid: vecs["text"] for pid, (_, vecs) in items.items() if "text" in vecs}
        p50: dict[str, tuple[float, float]] = {}
        for label, weaviate in (("single node", one), ("3-node RF 3", many)):
            q = query_latency(weaviate, text_vectors, requests_n)
            p = page_latency(weaviate, data_dir, ids, requests_n)
            print(f"latency {label:11s}: near_vector {percentiles(q)} | product page {percentiles(p)}")
            p50[label] = (float(np.median(q)), float(np.median(p)))
        (q1, p1), (q3, p3) = p50["single node"], p50["3-node RF 3"]
        print(f"latency ratio cluster/single (p50): near_vector {q3 / q1:.2f}x, product page {p3 / p1:.2f}x "
              f"({requests_n} sequential requests each, {len(ids)} products)")
    return many


def anon_bytes(pid: int) -> int:
    """Anonymous resident memory of a process (RssAnon: heap, vector cache, graph; not file pages it maps)."""
    time.sleep(5)  # let the start-up work (cache prefill) settle
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no RssAnon for {pid}")


def synthetic(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random unit vectors of the real dimensions, one row per product."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, dim in DIMS.items():
        m = rng.standard_normal((n, dim)).astype(np.float32)
        out[name] = m / np.linalg.norm(m, axis=1, keepdims=True)
    return out


def compression(root: Path, objects: int, queries: int) -> None:
    """Part 2: memory and recall@10 per compression, each on a fresh single node."""
    vectors = synthetic(objects)
    rng = np.random.default_rng(1)
    picks = rng.choice(objects, queries, replace=False)
    probes = vectors["text"][picks] + 0.05 * rng.standard_normal((queries, DIMS["text"])).astype(np.float32)
    exact = np.argsort(-(probes @ vectors["text"].T), axis=1)[:, :10]
    items = [StoredProduct(Product(product_id=f"S{i:06d}", title=f"synthetic {i}"), Fingerprints("s", "s", "s"),
                           {name: m[i] for name, m in vectors.items()}) for i in range(objects)]
    baseline = None
    for kind in ("none", "rq", "bq", "pq"):
        folder = root / f"mem-{kind}"
        with single_node(folder) as server:
            ws = local_settings(server, collection="Mem", compression_text=kind, compression_image=kind,
                                compression_behavior=kind, compression_training_limit=max(256, objects // 4),
                                job_timeout_s=120)
            with ProductStore.open(ws, job=True) as store:
                store.ensure_collection()
            empty = restarted_anon(server)
            started = time.monotonic()
            with ProductStore.open(ws, job=True) as store:
                store.upsert(items, batch_size=500)
            load_s = time.monotonic() - started
            full = restarted_anon(server)
            with ProductStore.open(ws) as store:
                layout = store.layout()["compression"]
                found = [[int(h.product_id[1:]) for h in store.near_vector(q, "text", 10, properties=[])]
                         for q in probes]
            recall = np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, exact, strict=True)])
            per_100k = (full - empty) / objects * 100_000 / 2**20
            baseline = baseline or per_100k
            print(f"compression {kind:4s} (server reports {layout['text']}): +{per_100k:6.0f} MiB RssAnon per 100k "
                  f"products ({per_100k / baseline:.2f}x of none), recall@10 {recall:.3f}, load {load_s:.0f}s "
                  f"for {objects} products", flush=True)
        shutil.rmtree(folder, ignore_errors=True)


def restarted_anon(server: LocalWeaviate) -> int:
    """RssAnon of the server freshly restarted on its data (write buffers flushed to disk, vector cache prefilled
    from it): the memory the stored products cost at rest."""
    server.stop()
    server.start()
    return anon_bytes(server.pid or 0)


def node_status(url: str, name: str) -> str:
    """How the node at ``url`` sees node ``name`` (HEALTHY, UNHEALTHY, …, or absent)."""
    try:
        nodes = requests.get(f"{url}/v1/nodes", timeout=5).json().get("nodes", [])
    except (requests.RequestException, ValueError):
        return "no answer"
    return next((str(n.get("status")) for n in nodes if n.get("name") == name), "absent")


def lost_node(cluster: LocalCluster, weaviate: WeaviateSettings) -> None:
    """Part 3: SIGKILL node 1 under a query loop, write meanwhile, restart it, time its catch-up."""
    calls: list[tuple[float, float, bool]] = []
    stop = threading.Event()
    store = ProductStore.open(replace(weaviate, query_timeout_s=10))
    probe = np.ones(DIMS["text"], dtype=np.float32) / np.sqrt(DIMS["text"])

    def loop() -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                ok = bool(store.near_vector(probe, "text", 10, properties=[]))
            except Exception:  # noqa: BLE001 - the bench counts every failure, whatever it is
                ok = False
            calls.append((started, time.monotonic() - started, ok))
            time.sleep(0.05)

    worker = threading.Thread(target=loop, daemon=True)
    worker.start()
    try:
        time.sleep(3)
        killed = time.monotonic()
        cluster.kill(0)
        seen_down = None
        with ProductStore.open(replace(weaviate, retry_window_s=120), job=True) as writer:
            written = [StoredProduct(Product(product_id=f"LOST-{i}", title=f"written while node 1 was down {i}"),
                                     Fingerprints("l", "l", "l"), {"text": probe}) for i in range(20)]
            writer.upsert(written, batch_size=5)
            write_s = time.monotonic() - killed
        while time.monotonic() - killed < 90:
            if seen_down is None and node_status(cluster.urls[1], "node1") != "HEALTHY":
                seen_down = time.monotonic() - killed
            if seen_down is not None and time.monotonic() - killed > 45:
                break
            time.sleep(0.5)
    finally:
        stop.set()
        worker.join(timeout=60)
        store.close()
    after = [c for c in calls if c[0] >= killed]
    first_ok = min((c[0] + c[1] - killed for c in after if c[2]), default=float("nan"))
    print(f"lost node: first answer {first_ok:.1f}s after the SIGKILL, slowest call {max(c[1] for c in after):.1f}s, "
          f"{sum(not c[2] for c in after)} of {len(after)} calls failed; survivors report node1 not HEALTHY after "
          f"{seen_down if seen_down is not None else float('nan'):.1f}s; 20 writes done {write_s:.1f}s after the kill")
    restarted = time.monotonic()
    cluster.restart(0)
    ready_s = time.monotonic() - restarted
    urls = [f"{cluster.urls[0]}/v1/objects/{weaviate.collection}/{product_uuid(p.product.product_id)}" for p in written]
    while True:  # node_name: answered from node 1's own replica
        held = sum(requests.get(url, params={"node_name": "node1"}, timeout=10).status_code == 200 for url in urls)
        if held == len(written) or time.monotonic() - restarted > 240:
            break
        time.sleep(1)
    print(f"lost node: restarted node ready in {ready_s:.1f}s; its replica held {held}/{len(written)} of the outage "
          f"writes {time.monotonic() - restarted:.1f}s after the restart")


def main() -> None:
    """Run the three parts; everything started is stopped."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: latency,compression,lost")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    skip = set(args.skip.split(","))
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        root = Path(tmp)
        if "compression" not in skip:
            compression(root, args.objects, args.queries)
        if skip >= {"latency", "lost"}:
            return
        http, grpc = free_port_runs(2, length=3)
        with LocalCluster(BINARY, root / "cluster", 3, http_port=http, grpc_port=grpc,
                          startup_timeout_s=180) as cluster:
            print(f"cluster of 3 ready; node data under {cluster.root}")
            weaviate = cluster.client_settings(WeaviateSettings(
                collection=f"Lost_{uuid.uuid4().hex[:8]}", replication_factor=3, async_replication=True))
            if "latency" not in skip:
                weaviate = latency(root, cluster, args.requests)
            else:
                with ProductStore.open(weaviate) as store:
                    store.ensure_collection()
            if "lost" not in skip:
                lost_node(cluster, weaviate)


if __name__ == "__main__":
    main()
