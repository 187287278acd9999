"""Benchmark: refresh times (full vs incremental) and product-page load while a refresh publishes a new release.

Prints figures (it is not a test). In one run it
1. starts a local Weaviate on free loopback ports and copies the catalog to a work dir,
2. times a full `recsys refresh` from an empty store (vectorize, ALS, learned fusion + gate, lists, publish),
3. retitles 1% of the products and times the incremental refresh (events unchanged: the model is kept and only
   the changed pages are re-ranked), then the ratio incremental / full,
4. starts `gunicorn api.wsgi:app` (2 workers, reload checked every second) and a load generator in another process
   (concurrency 8, anonymous and personalised product pages, loopback only), measures a quiet phase, then a
   "next day" (another 1% of products retitled, the last sessions replayed a year later as new events) refresh
   while the load runs (it refits, gates and publishes), then a quiet phase after; failed requests and latency
   percentiles per phase, and which releases answered,
5. stops everything it started.

    .venv/bin/python bench/refresh_soak.py                       # the fixtures
    .venv/bin/python bench/refresh_soak.py --catalog /tmp/cat2k
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_load import REPO, gunicorn, job_env, shoppers

from recommender.catalog.reader import CatalogReader
from recommender.config import load_settings
from recommender.store.ports import free_ports
from recommender.store.server import LocalWeaviate


def timed_refresh(env: dict[str, str], catalog: Path) -> tuple[float, str]:
    """Run `recsys refresh`; (seconds, its summary line)."""
    import subprocess

    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "jobs.cli", "refresh", "--catalog", str(catalog), "--no-progress"],
                         cwd=REPO, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if out.returncode not in (0, 3):
        raise SystemExit(f"refresh failed ({out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}")
    return seconds, out.stdout.strip().splitlines()[-1]


def retitle(catalog: Path, share: float, tag: str, seed: int) -> int:
    """Append ``tag`` to the titles of a random ``share`` of the products; how many."""
    path = catalog / "products.csv"
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    picks = random.Random(seed).sample(range(len(rows)), max(1, round(len(rows) * share)))
    for i in picks:
        rows[i]["title"] += f" {tag}"
    _write(path, rows)
    return len(picks)


def next_day_events(catalog: Path, share: float = 0.03) -> int:
    """Replay the last ``share`` of the events a year later under new session ids (new events); how many."""
    path = catalog / "events.csv"
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    tail = rows[-max(1, round(len(rows) * share)):]
    extra = [dict(r, timestamp=str(int(r["timestamp"][:4]) + 1) + r["timestamp"][4:],
                  session_id=(r.get("session_id") or "s") + "-next") for r in tail]
    _write(path, rows + extra)
    return len(extra)


def _write(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def soak(base: str, ids: list[str], users: list[str], concurrency: int, stop_file: str, out_file: str) -> None:
    """Load generator process: until ``stop_file`` exists, product pages (every 4th personalised); writes
    [wall time, latency s, ok, release] per request to ``out_file``."""
    rng = random.Random(5)
    records: list[list[Any]] = []
    lock = threading.Lock()
    stop = Path(stop_file)

    def worker(slot: int) -> None:
        session = requests.Session()
        n = 0
        while not stop.exists():
            n += 1
            params: dict[str, Any] = {"k": 10, "explain": "template"}
            if users and n % 4 == 0:
                params["user_id"] = rng.choice(users)
            t0 = time.perf_counter()
            try:
                res = session.get(f"{base}/v1/products/{rng.choice(ids)}/recommendations", params=params, timeout=10)
                body = res.json()
                ok, release = res.status_code == 200 and len(body["items"]) > 0, body.get("release")
            except (requests.RequestException, ValueError, KeyError):
                ok, release = False, None
            with lock:
                records.append([time.time(), time.perf_counter() - t0, ok, release])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    Path(out_file).write_text(json.dumps(records))


def phase_line(name: str, records: list[list[Any]]) -> str:
    """Requests, failures, p50/p99 and releases seen in one phase."""
    if not records:
        return f"{name}: no requests"
    lat = np.array([r[1] for r in records if r[2]]) * 1000
    failed = sum(1 for r in records if not r[2])
    seen = sorted({r[3] for r in records if r[3]})
    span = records[-1][0] - records[0][0] or 1.0
    p50, p99 = (np.percentile(lat, 50), np.percentile(lat, 99)) if len(lat) else (0.0, 0.0)
    return (f"{name}: {len(records)} requests, {failed} failed, {len(records) / span:.0f} req/s, "
            f"p50 {p50:.1f} ms, p99 {p99:.1f} ms; releases {', '.join(seen)}")


def main() -> None:
    """Set up, time the refreshes, soak during a publishing refresh, print, stop everything."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--catalog", type=Path, default=REPO / "fixtures")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--quiet-seconds", type=float, default=20.0, help="load before and after the refresh")
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--no-soak", action="store_true", help="only time the full and incremental refreshes")
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-soak-"))
    catalog = work / "catalog"
    shutil.copytree(args.catalog, catalog, ignore=shutil.ignore_patterns("truth.csv"))
    base_settings = load_settings()
    http_port, grpc_port = free_ports(2)
    server = LocalWeaviate(base_settings.weaviate_binary, work / "weaviate", http_port=http_port,
                           grpc_port=grpc_port)
    server.start()
    try:
        settings = replace(base_settings, weaviate=replace(base_settings.weaviate, host="127.0.0.1",
                                                           http_port=server.http_port, grpc_port=server.grpc_port,
                                                           collection="BenchSoak"))
        env = job_env(settings, catalog, work / "data", args.image_size)
        env["RECSYS_RANKING__RELOAD_INTERVAL_S"] = "1"
        full, line = timed_refresh(env, catalog)
        print(f"full refresh (empty store): {full:.1f} s\n  {line}")
        changed = retitle(catalog, 0.01, "(new season)", seed=1)
        inc, line = timed_refresh(env, catalog)
        print(f"incremental refresh, {changed} products (1%) retitled, events unchanged: {inc:.1f} s = "
              f"{inc / full:.1%} of the full refresh\n  {line}")
        if not args.no_soak:
            soak_phases(env, work, catalog, [p.product_id for p in CatalogReader(catalog)], args)
    finally:
        server.stop()


def soak_phases(env: dict[str, str], work: Path, catalog: Path, ids: list[str], args: argparse.Namespace) -> None:
    """Load before, during and after a refresh that refits and publishes."""
    stop, out = work / "stop-load", work / "load.json"
    with gunicorn(env, 2, work / "gunicorn.log") as (base, _):
        ctx = get_context("spawn")
        loader = ctx.Process(target=soak, args=(base, ids, shoppers(catalog), args.concurrency, str(stop), str(out)))
        loader.start()
        time.sleep(args.quiet_seconds)
        changed = retitle(catalog, 0.01, "(restocked)", seed=2)
        added = next_day_events(catalog)
        t_start = time.time()
        during, line = timed_refresh(env, catalog)
        t_end = time.time()
        time.sleep(args.quiet_seconds)
        stop.touch()
        loader.join(60)
    records = json.loads(out.read_text())
    print(f"refresh under load ({changed} products retitled, {added} new events: refit + gate + publish): "
          f"{during:.1f} s\n  {line}")
    print(phase_line("before ", [r for r in records if r[0] < t_start]))
    print(phase_line("during ", [r for r in records if t_start <= r[0] < t_end]))
    print(phase_line("after  ", [r for r in records if r[0] >= t_end]))
    failed = sum(1 for r in records if not r[2])
    print(f"total: {len(records)} requests, {failed} failed")


if __name__ == "__main__":
    main()
