"""Measuring parts of `bench/shop_scale.py`: a job as a child process (wall, CPU, peak RSS from ``wait4``), the
shop's own Weaviate on ports kept in its state (so its data dir can be reopened later), CPU of running processes
from /proc, and the API loads (product pages, search, ask) against gunicorn beside the bare near-vector query."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import requests
from api_load import (
    PERSONAL,
    REPO,
    LoadResult,
    bare_load,
    gunicorn,
    http_load,
    rss_mb,
    run_load,
    text_vectors,
    worker_pids,
)
from scale_state import StepLog

from recommender.config import Settings
from recommender.store.ports import ClusterPorts, free_ports
from recommender.store.products import ProductStore
from recommender.store.server import LocalWeaviate

TICK = os.sysconf("SC_CLK_TCK")
QUESTIONS = REPO / "bench" / "questions" / "fixtures-handwritten.jsonl"


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a running process has used (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def run_job(env: dict[str, str], log: Path, args: list[str], kill_after: float | None = None,
            weaviate_pid: int | None = None) -> dict[str, Any]:
    """Run ``python -m jobs.cli ARGS`` (output to ``log``); wall seconds, its CPU seconds and peak RSS (its own,
    from wait4), Weaviate's CPU seconds over the same time, exit code, the last output line. With ``kill_after``
    the job is SIGKILLed after that many seconds (to test resuming)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    w0 = cpu_seconds(weaviate_pid) if weaviate_pid else 0.0
    t0 = time.perf_counter()
    with log.open("ab") as out:
        out.write(f"\n$ recsys {' '.join(args)}\n".encode())
        out.flush()
        proc = subprocess.Popen([sys.executable, "-m", "jobs.cli", *args], cwd=REPO, env=env, stdout=out,
                                stderr=subprocess.STDOUT)
        timer = threading.Timer(kill_after, proc.send_signal, (signal.SIGKILL,)) if kill_after else None
        if timer:
            timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:  # the bench was stopped (SIGTERM, ^C): the job goes with it, resumable
            proc.kill()
            proc.wait()
            raise
        finally:
            if timer:
                timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - t0
    lines = [x for x in log.read_text(errors="replace").splitlines() if x.strip()]
    return {"seconds": round(seconds, 1), "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
            "peak_rss_mb": round(usage.ru_maxrss / 1024), "exit": proc.returncode,
            "weaviate_cpu_s": round(cpu_seconds(weaviate_pid) - w0, 1) if weaviate_pid else None,
            "last_line": lines[-1] if lines else ""}


def counts(line: str) -> dict[str, float]:
    """The ``name=number`` pairs of a job's summary line."""
    return {k: float(v) for k, v in re.findall(r"(\w+)=([\d.]+)", line)}


@contextmanager
def shop_weaviate(base: Settings, folder: Path, state: StepLog, collection: str = "Shop"
                  ) -> Iterator[tuple[Settings, LocalWeaviate]]:
    """The shop's Weaviate, its data in ``folder``, on the ports it was first started with (kept in ``state``:
    raft remembers its address); stopped afterwards."""
    ports = state.value("weaviate_ports")
    if ports is None:
        ports = free_ports(6)
        state.keep("weaviate_ports", ports)
    server = LocalWeaviate(base.weaviate_binary, folder, http_port=ports[0], grpc_port=ports[1],
                           startup_timeout_s=600.0, cluster_ports=ClusterPorts(*ports[2:]))
    server.start()
    try:
        yield replace(base, weaviate=replace(base.weaviate, host="127.0.0.1", http_port=server.http_port,
                                             grpc_port=server.grpc_port, collection=collection)), server
    finally:
        server.stop()


def post_load(base: str, path: str, bodies: list[dict[str, Any]], n: int, concurrency: int, max_seconds: float,
              seed: int) -> LoadResult:
    """POST random ``bodies`` to ``path``; a call counts when it is a 200 (runs in the load process)."""
    local = threading.local()
    rng = random.Random(seed)
    picks = [rng.choice(bodies) for _ in range(n)]

    def call(i: int) -> bool:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        try:
            return bool(local.session.post(base + path, json=picks[i], timeout=30).status_code == 200)
        except requests.RequestException:
            return False

    return run_load(call, n, concurrency, max_seconds)


def figures(r: LoadResult) -> dict[str, Any]:
    """p50/p99 (ms), ok, errors and requests/s of one load."""
    ms = np.asarray(r.latencies or [0.0]) * 1000
    return {"ok": len(r.latencies), "errors": r.errors, "req_s": round(len(r.latencies) / r.seconds, 1),
            "p50_ms": round(float(np.percentile(ms, 50)), 1), "p99_ms": round(float(np.percentile(ms, 99)), 1)}


def questions() -> list[str]:
    """The handwritten shop questions (the generator's vocabulary), used for both search and ask."""
    return [json.loads(x)["question"] for x in QUESTIONS.read_text().splitlines() if x.strip()]


def measure_api(settings: Settings, env: dict[str, str], ids: list[str], users: list[str], work: Path,
                opts: dict[str, Any], weaviate_pid: int) -> dict[str, Any]:
    """2 (``workers``) gunicorn workers: each load after a warm-up, CPU seconds per request of the workers and of
    Weaviate, RSS per worker; then the bare near-vector query from this process."""
    n, conc, secs = opts["requests"], opts["concurrency"], opts["max_seconds"]
    texts = questions()
    loads = {
        "anonymous": (http_load, (ids, n, conc, secs, 2, None, ("precomputed",))),
        "personalised": (http_load, (ids, n, conc, secs, 4, users, PERSONAL)),
        "search": (post_load, ("/v1/search", [{"text": t, "k": 10} for t in texts], n // 4, conc, secs, 5)),
        "ask": (post_load, ("/v1/ask", [{"question": t} for t in texts], n // 4, conc, secs, 6)),
    }
    out: dict[str, Any] = {}
    with gunicorn(env, opts["workers"], work / "gunicorn.log", probe="/readyz", startup_s=900) as (base, master):
        pids = worker_pids(master)
        out["rss_mb_ready"] = [round(rss_mb(p)) for p in pids]
        with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as loader:
            loader.submit(http_load, base, ids, 100, conc, 60.0, 1).result()
            loader.submit(post_load, base, "/v1/search", [{"text": t} for t in texts], 20, conc, 60.0, 1).result()
            for name, (fn, args) in loads.items():
                c0 = sum(cpu_seconds(p) for p in pids) + cpu_seconds(weaviate_pid)
                r = loader.submit(fn, base, *args).result()
                spent = sum(cpu_seconds(p) for p in pids) + cpu_seconds(weaviate_pid) - c0
                out[name] = {**figures(r), "cpu_ms_per_request": round(1000 * spent / max(1, len(r.latencies)), 1)}
        out["rss_mb_after"] = [round(rss_mb(p)) for p in pids]
    out["weaviate_rss_mb"] = round(rss_mb(weaviate_pid))
    with ProductStore.open(settings.weaviate) as store:
        vectors = text_vectors(store, random.Random(0).sample(ids, min(2000, len(ids))))
        bare_load(store, vectors, 100, conc, 60.0, 1)
        out["bare"] = figures(bare_load(store, vectors, n, conc, secs, 2))
    for name in loads:
        out[name]["x_bare_p50"] = round(out[name]["p50_ms"] / max(out["bare"]["p50_ms"], 1e-3), 2)
    return out

