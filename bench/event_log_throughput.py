"""Benchmark: event-log insert throughput, SQLite (the embedded default) against PostgreSQL, in one run.

Prints figures (it is not a test). It starts a throwaway PostgreSQL (fsync on, default settings, loopback, removed
afterwards: ``tests/postgres_server.py``), generates ``--events`` synthetic time-ordered events, then for each
backend on an empty log measures:
1. bulk: one ``append`` of everything (what ``recsys train``/``refresh`` imports do, 100k rows per transaction),
2. re-import: the same events again (all duplicates: the idempotency path),
3. API-like: batches of 25 events, the log opened per batch as ``POST /v1/events`` does, one writer,
4. concurrent: ``--writers`` threads, each sending the same API-like batches in its own order (every event sent by
   every writer), then checks that the log holds each event exactly once.
Speeds are events per second and PostgreSQL/SQLite ratios. Bounded by ``--events`` and ``--api-batches``.

    .venv/bin/python bench/event_log_throughput.py [--events 200000] [--api-batches 400] [--writers 4]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recommender.config import EventsSettings
from recommender.events.backend import EventLogs
from recommender.events.log import Event
from tests.postgres_server import bindir, postgres_server

API_BATCH = 25


def synthetic(n: int, seed: int = 7) -> list[Event]:
    """``n`` time-ordered events over 20k shoppers and 5k products."""
    rng, t0 = random.Random(seed), datetime(2025, 1, 1, tzinfo=UTC)
    return [Event(f"u{rng.randrange(20_000)}", f"p{rng.randrange(5_000)}", rng.choice(("view", "view", "cart",
                  "purchase")), t0 + timedelta(seconds=i * 3), f"s{i // 8}") for i in range(n)]


def rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def measure(logs: EventLogs, events: list[Event], api_events: list[Event], writers: int) -> dict[str, float]:
    """Events/s of each pattern on an empty log (``api_events`` go to a second, distinct range of the log)."""
    out: dict[str, float] = {}
    with logs.open() as log:
        start = time.perf_counter()
        assert log.append(events).inserted == len(events)
        out["bulk"] = rate(len(events), time.perf_counter() - start)
        start = time.perf_counter()
        assert log.append(events).duplicates == len(events)
        out["reimport"] = rate(len(events), time.perf_counter() - start)
    batches = [api_events[i:i + API_BATCH] for i in range(0, len(api_events), API_BATCH)]
    start = time.perf_counter()
    for batch in batches[: len(batches) // 2]:
        with logs.open() as log:
            log.append(batch)
    sent = sum(len(b) for b in batches[: len(batches) // 2])
    out["api_one_writer"] = rate(sent, time.perf_counter() - start)
    rest = batches[len(batches) // 2:]
    inserted: list[int] = []

    def writer(seed: int) -> None:
        order = rest[:]
        random.Random(seed).shuffle(order)
        for batch in order:
            with logs.open() as log:
                inserted.append(log.append(batch).inserted)

    threads = [threading.Thread(target=writer, args=(s,)) for s in range(writers)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    unique = sum(len(b) for b in rest)
    with logs.open() as log:
        keys = [row[0] for row in log.raw_rows()]
    out["concurrent_sent"] = rate(unique * writers, elapsed)
    out["concurrent_ok"] = float(sum(inserted) == unique and len(keys) == len(set(keys)) == len(events) + len(
        api_events))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--api-batches", type=int, default=400)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--no-fsync", action="store_true", help="PostgreSQL with fsync off (to see what commits cost)")
    args = parser.parse_args()
    bins = bindir()
    if bins is None:
        raise SystemExit("PostgreSQL binaries not found (apt-get install postgresql)")
    events = synthetic(args.events + args.api_batches * API_BATCH)
    bulk, api = events[: args.events], events[args.events:]
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp, postgres_server(bins, fsync=not args.no_fsync) as pg:
        for name, url in (("sqlite", f"sqlite:///{Path(tmp) / 'events.sqlite3'}"),
                          ("postgresql", pg.create_database("bench"))):
            with EventLogs(EventsSettings(url=url, pool_size=args.writers), Path(tmp)) as logs:
                results[name] = measure(logs, bulk, api, args.writers)
    print(f"event log (PostgreSQL fsync {'off' if args.no_fsync else 'on'}), {args.events} bulk events, "
          f"{len(api)} API-like events in batches of {API_BATCH}, {args.writers} concurrent writers "
          "(events/s; ratio = PostgreSQL / SQLite)")
    for key in ("bulk", "reimport", "api_one_writer", "concurrent_sent"):
        s, p = results["sqlite"][key], results["postgresql"][key]
        print(f"  {key:16s} sqlite {s:12,.0f}   postgresql {p:12,.0f}   ratio {p / s:5.2f}")
    for name in results:
        print(f"  {name}: concurrent writers stored every event exactly once: {bool(results[name]['concurrent_ok'])}")


if __name__ == "__main__":
    main()
