"""Benchmark: cold start of the API under real gunicorn with the shipped config (per-worker warm-up).

Prints figures (it is not a test). In one run it
1. starts a local Weaviate on free loopback ports and vectorizes the catalog (`recsys vectorize`, in a subprocess),
2. starts `gunicorn api.wsgi:app` (N workers, `gunicorn.conf.py`) and times process start → first `/readyz` 200
   and → every worker answering `/readyz` 200 (each reports its pid and what it loaded),
3. times the first `POST /v1/search` after ready against the 20th and the median of the 2nd-20th (same query;
   goal <= 2x) and the first `POST /v1/ask` (the requests may reach either worker),
4. reads each worker's VmRSS after warm-up and after the requests.
Everything it starts is stopped; it binds loopback only. `--no-warmup` measures the lazy behaviour for comparison.

    .venv/bin/python bench/cold_start.py
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import requests
from api_load import REPO, bench_weaviate, gunicorn, job_env, report_workers, run_job

from recommender.config import load_settings

QUERY = {"text": "blue jeans", "k": 10}  # one query throughout, so the first and the 20th differ only in warmth


def wait_ready(base: str, workers: int, t0: float, limit_s: float = 300.0) -> tuple[float, float]:
    """Seconds from ``t0`` to the first ``/readyz`` 200 and to every worker having answered 200."""
    first: float | None = None
    pids: set[int] = set()
    while len(pids) < workers:
        if time.perf_counter() - t0 > limit_s:
            raise SystemExit(f"not ready after {limit_s}s ({len(pids)} workers ready)")
        try:
            res = requests.get(f"{base}/readyz", timeout=5)
        except requests.RequestException:
            res = None
        if res is not None and res.status_code == 200:
            first = first if first is not None else time.perf_counter() - t0
            pids.add(int(res.json()["pid"]))
        else:
            time.sleep(0.1)
    assert first is not None
    return first, time.perf_counter() - t0


def timed_post(base: str, path: str, body: dict[str, object]) -> float:
    """Seconds one JSON POST takes (a non-200 stops the bench)."""
    t0 = time.perf_counter()
    res = requests.post(f"{base}{path}", json=body, timeout=120)
    if res.status_code != 200:
        raise SystemExit(f"{path}: HTTP {res.status_code} {res.text[:500]}")
    return time.perf_counter() - t0


def measure(env: dict[str, str], workers: int, work: Path) -> None:
    """Gunicorn from process start to ready, first vs 20th search, first ask, worker memory."""
    t0 = time.perf_counter()
    with gunicorn(env, workers, work / "gunicorn.log") as (base, master):
        listening = time.perf_counter() - t0
        first_ready, all_ready = wait_ready(base, workers, t0)
        print(f"process start -> listening {listening:.1f}s, -> first /readyz 200 {first_ready:.1f}s, "
              f"-> all {workers} workers ready {all_ready:.1f}s")
        report_workers(master, "after warm-up")
        searches = [timed_post(base, "/v1/search", QUERY) for _ in range(20)]
        ask = timed_post(base, "/v1/ask", {"question": "blue jeans under 80"})
        later = statistics.median(searches[1:])
        print(f"first POST /v1/search {searches[0] * 1000:.0f} ms, 20th {searches[-1] * 1000:.0f} ms "
              f"(ratio {searches[0] / searches[-1]:.2f}x, goal <= 2x), median of the 2nd-20th {later * 1000:.0f} ms "
              f"(ratio {searches[0] / later:.2f}x); first POST /v1/ask {ask * 1000:.0f} ms")
        report_workers(master, "after 20 searches + 1 ask")


def main() -> None:
    """Start Weaviate, vectorize, measure, print, stop everything."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--catalog", type=Path, default=REPO / "fixtures", help="catalog folder (default: fixtures)")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    ap.add_argument("--image-size", type=int, default=64, help="image tower input size (speed)")
    ap.add_argument("--no-warmup", action="store_true", help="turn the warm-up off (the lazy behaviour)")
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-cold-"))
    base = load_settings()
    with bench_weaviate(base, work / "weaviate", "BenchCold") as settings:
        env = job_env(settings, args.catalog, work / "data", args.image_size)
        env["RECSYS_API__WARMUP"] = "false" if args.no_warmup else "true"
        run_job(env, "vectorize", "--catalog", str(args.catalog))
        print(f"catalog {args.catalog}; {args.workers} workers; warm-up {'off' if args.no_warmup else 'on'}")
        measure(env, args.workers, work)


if __name__ == "__main__":
    main()
