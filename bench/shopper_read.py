"""Benchmark: a personalised request's shopper read, the two ``Event`` reads it was (``user_history`` and
``user_purchases``) against ``recent_activity``, on SQLite and PostgreSQL, alternated in one run.

Prints figures (it is not a test). Copies the events of ``--events`` (an events log, e.g. the API benchmark's
``WORKDIR/data/events.sqlite3``) into an empty SQLite log and into a throwaway PostgreSQL 15 (loopback, removed
afterwards: ``tests/postgres_server.py``), checks that both reads give the same rows for every user, then per
backend times ``--calls`` reads of random users (limits 200 and 200, as ``ranking`` configures), old and new in
alternating order for ``--rounds`` rounds: this process's CPU per read and wall time per read (PostgreSQL's own CPU
is in its server process, which wall time includes), and the median old/new ratio of each. On SQLite, ``union``
is the one-statement read PostgreSQL uses, run on SQLite (the reason SQLite reads with two statements instead).

    .venv/bin/python bench/shopper_read.py --events WORKDIR/data/events.sqlite3 [--calls 3000] [--rounds 6]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recommender.config import EventsSettings, RankingSettings
from recommender.events.backend import EventLogs, SqliteEventLog
from recommender.events.log import RecentActivity
from recommender.events.sql import EventLog, SqlEventLog
from tests.postgres_server import bindir, postgres_server

LIMITS = RankingSettings().history_items, RankingSettings().purchase_history_items


def two_reads(log: EventLog, user_id: str) -> RecentActivity:
    """The read ``RecommendationService.shopper`` made before ``recent_activity``, reduced to what it used."""
    history, purchases = log.user_history(user_id, limit=LIMITS[0]), log.user_purchases(user_id, limit=LIMITS[1])
    return RecentActivity(tuple((e.product_id, e.event, e.session_id) for e in history),
                          tuple(e.product_id for e in purchases))


def measure(name: str, log: EventLog, users: list[str], calls: int, rounds: int) -> None:
    """Check old == new for every user, then print CPU and wall time per read, alternated, with old/new ratios.
    On SQLite also the shared one-statement read (``SqlEventLog.recent_activity``, PostgreSQL's) as ``union``."""
    ways: dict[str, Callable[[str], RecentActivity]] = {"old": lambda u: two_reads(log, u),
                                                        "new": lambda u: log.recent_activity(u, *LIMITS)}
    if isinstance(log, SqliteEventLog):
        ways["union"] = lambda u: SqlEventLog.recent_activity(log, u, *LIMITS)
    assert all(len({read(u) for read in ways.values()}) == 1 for u in users), f"{name}: the reads differ"
    chosen = random.Random(3).choices(users, k=calls)
    cpu: dict[str, list[float]] = {way: [] for way in ways}
    wall: dict[str, list[float]] = {way: [] for way in ways}
    for r in range(rounds):
        for way in list(ways) if r % 2 == 0 else list(reversed(ways)):
            read, c0, w0 = ways[way], time.process_time(), time.perf_counter()
            for user in chosen:
                read(user)
            cpu[way].append((time.process_time() - c0) / calls * 1e3)
            wall[way].append((time.perf_counter() - w0) / calls * 1e3)
    for what, t in (("CPU", cpu), ("wall", wall)):
        for way in ways:
            if way != "old":
                ratios = [old / new for old, new in zip(t["old"], t[way], strict=True)]
                print(f"{name:10s} {what:4s} per read: old {statistics.median(t['old']):.4f} ms, {way} "
                      f"{statistics.median(t[way]):.4f} ms, old/{way} median {statistics.median(ratios):.2f} "
                      f"(rounds {min(ratios):.2f}–{max(ratios):.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=Path, required=True, help="an events.sqlite3 to copy the events from")
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    with SqliteEventLog(args.events) as source:
        rows = list(source.raw_rows())
    users = sorted({row[1] for row in rows})
    print(f"{len(rows)} events of {len(users)} users; {args.calls} reads per way per round, {args.rounds} rounds")
    with tempfile.TemporaryDirectory() as tmp:
        with SqliteEventLog(Path(tmp) / "events.sqlite3") as log:
            log.append_rows(rows)
            measure("SQLite", log, users, args.calls, args.rounds)
        if args.skip_postgres:
            return
        bins = bindir()
        if bins is None:
            sys.exit("PostgreSQL server binaries not found (apt-get install postgresql), or pass --skip-postgres")
        with postgres_server(bins) as server:
            url = server.create_database("shopper_read")
            with EventLogs(EventsSettings(url=url, pool_size=1), Path(tmp)) as logs, logs.open() as log:
                log.append_rows(rows)
                with psycopg.connect(url, autocommit=True) as conn:  # statistics now, not when autovacuum runs
                    conn.execute("ANALYZE events")
                measure("PostgreSQL", log, users, args.calls, args.rounds)


if __name__ == "__main__":
    main()
