"""Benchmark: the refresh's import of an events file it already imported, read again against skipped, in one run.

Prints figures (it is not a test). For the fixture shop's ``events.csv`` and a generated file of ``--events`` rows
(time-ordered, ``--products`` products, all known), on each backend (SQLite; PostgreSQL too with ``--postgres``: a
throwaway server from ``tests/postgres_server.py``), on an empty log: the first import, then the same file again as
every refresh did before (read, validated, every row a duplicate: ``skip_unchanged=False``, what ``--force`` does)
and as a refresh does now (``skip_unchanged=True``: the file's sha256 and the context's digest, then skipped). The
import is called as ``Refresh._import`` calls it (the same window); the catalog read that gives the known products
is not included (the refresh still does it); reading every event back (``log.events``, which the import stage
does next, skipped or not) is timed apart.

    .venv/bin/python bench/import_skip.py [--events 100000] [--products 6700] [--postgres]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recommender.catalog.reader import CatalogReader
from recommender.config import EventsSettings
from recommender.events.backend import EventLogs
from recommender.events.trust import time_window
from recommender.trust_settings import EventTimeSettings
from tests.postgres_server import bindir, postgres_server

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def generate(path: Path, n: int, products: int, seed: int = 7) -> set[str]:
    """Write ``n`` time-ordered events over ``products`` products; return the product ids."""
    rng, t0 = random.Random(seed), datetime(2025, 1, 1, tzinfo=UTC)
    with path.open("w", encoding="utf-8") as f:
        f.write("user_id,product_id,event,timestamp,session_id\n")
        for i in range(n):
            kind = rng.choice(("view", "view", "view", "cart", "purchase"))
            ts = (t0 + timedelta(seconds=i * 7)).isoformat()
            f.write(f"u{rng.randrange(n // 19 + 1)},p{rng.randrange(products)},{kind},{ts},s{i // 9}\n")
    return {f"p{i}" for i in range(products)}


def measure(logs: EventLogs, path: Path, known: set[str]) -> dict[str, float]:
    """Seconds of the first import, a re-import read again, and a re-import skipped."""
    window = time_window(EventTimeSettings())
    out: dict[str, float] = {}
    with logs.open() as log:
        for name, skip in (("first", False), ("read_again", False), ("skipped", True)):
            start = time.perf_counter()
            result = log.import_file(path, known, window=window, skip_unchanged=skip)
            out[name] = time.perf_counter() - start
            print(f"    {name}: {out[name]:.3f}s  {result.line()}", flush=True)
        start = time.perf_counter()
        events = list(log.events(until=window.latest))  # what the import stage does next, skipped or not
        out["read_back"] = time.perf_counter() - start
        print(f"    read back {len(events)} events: {out['read_back']:.3f}s", flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--events", type=int, default=100_000)
    p.add_argument("--products", type=int, default=6_700)  # 15 events per product, as bench/shop_scale.py
    p.add_argument("--postgres", action="store_true")
    args = p.parse_args()
    reader = CatalogReader(FIXTURES)
    for _ in reader:
        pass
    with tempfile.TemporaryDirectory(prefix="import-skip-") as tmp:
        generated = Path(tmp) / "events.csv"
        files = {"fixtures": (FIXTURES / "events.csv", set(reader.seen_ids))}
        if args.events:
            files[f"generated {args.events}"] = (generated, generate(generated, args.events, args.products))
        bins = bindir()
        if args.postgres and bins is None:
            sys.exit("no PostgreSQL binaries found (tests/postgres_server.py looks for them)")
        server: AbstractContextManager = postgres_server(bins) if args.postgres and bins else nullcontext()
        with server as pg:
            for label, (path, known) in files.items():
                urls = {"sqlite": f"sqlite:///{Path(tmp) / (label.replace(' ', '_') + '.sqlite3')}"}
                if pg is not None:
                    urls["postgresql"] = pg.create_database(label.replace(" ", "_"))
                for backend, url in urls.items():
                    print(f"{label} ({path.stat().st_size / 1e6:.1f} MB), {backend}:", flush=True)
                    with EventLogs(EventsSettings(url=url), Path(tmp)) as logs:
                        s = measure(logs, path, known)
                    print(f"  read again / skipped: {s['read_again'] / s['skipped']:.0f}x "
                          f"({s['read_again']:.2f}s vs {s['skipped']:.3f}s)", flush=True)


if __name__ == "__main__":
    main()
