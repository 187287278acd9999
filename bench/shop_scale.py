"""Benchmark: a generated shop measured end to end at several sizes (1k → 10k → 100k products), resumably.

Prints figures (it is not a test). For each size in ``--sizes``, in ``--state DIR/n<size>/`` (catalog, Weaviate data,
the jobs' data dir, logs, ``steps.json``), it runs these steps, each a real `recsys` job in a child process (wall
time, its CPU seconds and peak RSS from wait4, Weaviate's CPU over the same time):

1. ``generate``            `recsys generate-catalog` (shoppers = 0.8 × products, events = 15 × products)
2. ``vectorize``           `recsys vectorize` into the shop's own local Weaviate (at ``--kill-vectorize SIZE:S`` it is
                           SIGKILLed after S seconds once and re-run: the re-run must encode only what is missing)
3. ``refresh_full``        `recsys refresh` on the vectorized store (events import, ALS, gate, every page's list)
4. ``edit_1pct``           exactly 1% of the products retitled and repriced (deterministic)
5. ``refresh_incremental`` `recsys refresh` (re-vectorizes the changed products, keeps the model, re-ranks)
6. ``api``                 gunicorn (2 workers, the shipped config), concurrency 8 from another process, loopback:
                           anonymous and personalised product pages, search, ask; the bare near-vector query
                           (k=10) in the same run; CPU per request (workers + Weaviate), RSS per worker and Weaviate's
7. ``new_day``             an average day of new events appended (the newest events replayed whole days later)
8. ``refresh_nightly``     `recsys refresh` (imports them, refits, gates, re-ranks every page, publishes)

Each finished step's figures go to ``steps.json`` and the step is skipped on a re-run, so a killed run continues
where it stopped (the vectorize job itself skips products already stored, by content hash). At the end the
figures of every size found in ``--state`` are printed as a table and written to ``table.json``/``table.md``.

    nice -n 5 .venv/bin/python bench/shop_scale.py --sizes 1000,10000,100000 --state ../shop-scale
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_load import REPO, job_env, shoppers
from scale_measure import counts, measure_api, run_job, shop_weaviate
from scale_state import StepLog, append_next_day, change_share
from scale_table import write_table

from recommender.catalog.reader import CatalogReader
from recommender.config import Settings, load_settings

REFRESH_OK = (0, 3)  # published, or the gate kept the served release


def main() -> None:
    """Run every missing step of every size, then print and write the table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000,100000", help="comma-separated product counts")
    ap.add_argument("--state", type=Path, required=True, help="state folder (resumable)")
    ap.add_argument("--kill-vectorize", default="10000:240", help="SIZE:SECONDS: kill that size's vectorize once")
    ap.add_argument("--image-size", type=int, default=64, help="image tower input size for vectorizing")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--requests", type=int, default=1000, help="product-page requests per load (search/ask: 1/4)")
    ap.add_argument("--max-seconds", type=float, default=60.0, help="time limit per load")
    ap.add_argument("--until", default="refresh_nightly", help="stop each size after this step")
    args = ap.parse_args()
    # stopped with SIGTERM: unwind, so the running job is killed and the shop's Weaviate stopped (all resumable)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    base = load_settings()
    for size in [int(s) for s in args.sizes.split(",")]:
        run_size(size, args, base)
    print(write_table(args.state))


def run_size(size: int, args: argparse.Namespace, base: Settings) -> None:
    """Every missing step of one shop size."""
    folder = args.state / f"n{size}"
    log = StepLog(folder / "steps.json")
    catalog = folder / "catalog"
    step(log, "generate", lambda: run_job(dict_env(), folder / "logs" / "generate.log", [
        "generate-catalog", "--out", str(catalog), "--products", str(size), "--shoppers", str(int(size * 0.8)),
        "--events", str(size * 15)]))
    if args.until == "generate":
        return
    with shop_weaviate(base, folder / "weaviate", log) as (settings, server):
        env = job_env(settings, catalog, folder / "data", args.image_size)
        wpid = server.pid

        def job(name: str, *cmd: str, kill: float | None = None) -> dict[str, Any]:
            return run_job(env, folder / "logs" / f"{name}.log", [*cmd, "--no-progress"], kill, wpid)

        for name, action in [
            ("vectorize", lambda: vectorize(job, catalog, kill_after(args.kill_vectorize, size))),
            ("refresh_full", lambda: refresh(job, "refresh_full", catalog)),
            ("edit_1pct", lambda: {"changed": len(change_share(catalog, 0.01, seed=1, tag="new season"))}),
            ("refresh_incremental", lambda: refresh(job, "refresh_incremental", catalog)),
            ("api", lambda: api(settings, env, catalog, folder, args, wpid)),
            ("new_day", lambda: {"events_added": append_next_day(catalog, "-next-day")}),
            ("refresh_nightly", lambda: refresh(job, "refresh_nightly", catalog)),
        ]:
            step(log, name, action)
            if name == args.until:
                return


def dict_env() -> dict[str, str]:
    """The environment for jobs that need no store."""
    return dict(os.environ, TOKENIZERS_PARALLELISM="false")


def step(log: StepLog, name: str, action: Any) -> None:
    """Run ``action`` unless ``name`` is already recorded; record and print its figures."""
    if log.done(name):
        print(f"[{log.path.parent.name}] {name}: done earlier {json.dumps(log.get(name))}", flush=True)
        return
    earlier = log.start(name)
    print(f"[{log.path.parent.name}] {name}: running" + (f" (resumed after {earlier} attempt(s))" if earlier else ""),
          flush=True)
    figures = action()
    if isinstance(figures.get("exit"), int) and figures["exit"] not in REFRESH_OK:
        raise SystemExit(f"{name} failed: {figures}")
    log.record(name, figures)
    print(f"[{log.path.parent.name}] {name}: {json.dumps(figures)}", flush=True)


def kill_after(spec: str, size: int) -> float | None:
    """The seconds after which ``size``'s vectorize is killed once (``SIZE:SECONDS``), or None."""
    if not spec:
        return None
    at, seconds = spec.split(":")
    return float(seconds) if int(at) == size else None


def vectorize(job: Any, catalog: Path, kill: float | None) -> dict[str, Any]:
    """The vectorize job; with ``kill``, killed once mid-run then re-run (figures of both, and their sums)."""
    if kill is None:
        first = job("vectorize", "vectorize", "--catalog", str(catalog))
        return {**first, **counts(first["last_line"])}
    killed = job("vectorize", "vectorize", "--catalog", str(catalog), kill=kill)
    resumed = job("vectorize", "vectorize", "--catalog", str(catalog))
    c = counts(resumed["last_line"])
    return {"seconds": round(killed["seconds"] + resumed["seconds"], 1),
            "cpu_s": round(killed["cpu_s"] + resumed["cpu_s"], 1),
            "peak_rss_mb": max(killed["peak_rss_mb"], resumed["peak_rss_mb"]),
            "weaviate_cpu_s": round((killed["weaviate_cpu_s"] or 0) + (resumed["weaviate_cpu_s"] or 0), 1),
            "exit": resumed["exit"], "last_line": resumed["last_line"], **c,
            "kill_test": {"killed_after_s": kill, "killed_exit": killed["exit"], "resumed_seconds": resumed["seconds"],
                          "resumed_text_encoded": c.get("text_encoded"),
                          "resumed_skipped_unchanged": c.get("skipped_unchanged")}}


def refresh(job: Any, name: str, catalog: Path) -> dict[str, Any]:
    """One `recsys refresh`, with its stage seconds and list counts parsed from its summary line."""
    out = job(name, "refresh", "--catalog", str(catalog))
    line = out["last_line"]
    out["stages_s"] = {k: float(v) for k, v in re.findall(r"(\w+) ([\d.]+)s\b", line.rsplit(";", 1)[-1])}
    return out


def api(settings: Settings, env: dict[str, str], catalog: Path, folder: Path, args: argparse.Namespace,
        weaviate_pid: int | None) -> dict[str, Any]:
    """The API measures (see ``scale_measure.measure_api``)."""
    ids = [p.product_id for p in CatalogReader(catalog)]
    opts = {"requests": args.requests, "concurrency": args.concurrency, "max_seconds": args.max_seconds,
            "workers": args.workers}
    return measure_api(settings, env, ids, shoppers(catalog), folder, opts, weaviate_pid or 0)


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
