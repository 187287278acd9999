"""Benchmark: the refresh's import stage on an events file it already imported, read again against skipped, one run.

Prints figures (it is not a test). For each catalog folder (``--catalog``, default the fixture shop; e.g. one made by
``recsys generate-catalog``) and, with ``--events N``, a generated file of N time-ordered rows over ``--products``
products, on each backend (SQLite; PostgreSQL too with ``--postgres``: a throwaway server from
``tests/postgres_server.py``), on an empty log, the import stage as ``Refresh.run`` does it: read the catalog (the
known product ids; a generated file's are given), ``import_file`` with the refresh's window, read every event back
(``log.events``). Once to fill the log, then alternately as every refresh did before (``skip_unchanged=False``: the
file read, validated, every row a duplicate; what ``--force`` does) and as a refresh does now (``skip_unchanged=True``).

    .venv/bin/python bench/import_skip.py [--catalog DIR ...] [--events 100000] [--products 6700] [--rounds 2]
        [--postgres]
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


def known_ids(catalog: Path) -> set[str]:
    """The catalog's product ids, read as ``Refresh._import`` reads them."""
    reader = CatalogReader(catalog)
    for _ in reader:
        pass
    return set(reader.seen_ids)


def stage(logs: EventLogs, path: Path, known: set[str] | Path, skip: bool) -> dict[str, float]:
    """One import stage: seconds of the catalog read (when ``known`` is a catalog), the import and the read-back."""
    t = {"start": time.perf_counter()}
    ids = known_ids(known) if isinstance(known, Path) else known
    t["catalog"] = time.perf_counter()
    with logs.open() as log:
        result = log.import_file(path, ids, window=time_window(EventTimeSettings()), skip_unchanged=skip)
        t["import"] = time.perf_counter()
        events = list(log.events(until=datetime.now(UTC) + timedelta(seconds=EventTimeSettings().max_future_s)))
        t["read_back"] = time.perf_counter()
    s = {"catalog": t["catalog"] - t["start"], "import": t["import"] - t["catalog"],
         "read_back": t["read_back"] - t["import"]}
    s["stage"] = sum(s.values())
    print(f"    skip_unchanged={skip!s:5}: {result.line()}; catalog {s['catalog']:.2f}s, import_file "
          f"{s['import']:.2f}s, read back {len(events)} {s['read_back']:.2f}s; stage {s['stage']:.2f}s", flush=True)
    return s


def measure(logs: EventLogs, path: Path, known: set[str] | Path, rounds: int) -> None:
    stage(logs, path, known, skip=False)  # fills the log
    runs: dict[bool, list[dict[str, float]]] = {False: [], True: []}
    for _ in range(rounds):
        for skip in (False, True):
            runs[skip].append(stage(logs, path, known, skip))
    for part in ("import", "stage"):
        before, after = (min(r[part] for r in runs[skip]) for skip in (False, True))
        print(f"  {part}: read again {before:.2f}s, skipped {after:.2f}s: {before / after:.1f}x (best of {rounds})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--catalog", type=Path, action="append", help="catalog folder (repeatable; default: fixtures)")
    p.add_argument("--events", type=int, default=0, help="also a generated file of this many events")
    p.add_argument("--products", type=int, default=6_700)  # 15 events per product, as bench/shop_scale.py
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--postgres", action="store_true")
    args = p.parse_args()
    bins = bindir()
    if args.postgres and bins is None:
        sys.exit("no PostgreSQL binaries found (tests/postgres_server.py looks for them)")
    with tempfile.TemporaryDirectory(prefix="import-skip-") as tmp:
        cases: dict[str, tuple[Path, set[str] | Path]] = {
            f"catalog{i}": (c / "events.csv", c) for i, c in enumerate(args.catalog or [FIXTURES])}
        if args.events:
            generated = Path(tmp) / "events.csv"
            cases[f"generated{args.events}"] = (generated, generate(generated, args.events, args.products))
        server: AbstractContextManager = postgres_server(bins) if args.postgres and bins else nullcontext()
        with server as pg:
            for label, (path, known) in cases.items():
                urls = {"sqlite": f"sqlite:///{Path(tmp) / (label + '.sqlite3')}"}
                if pg is not None:
                    urls["postgresql"] = pg.create_database(label.lower())
                for backend, url in urls.items():
                    print(f"{label} {path} ({path.stat().st_size / 1e6:.1f} MB), {backend}:", flush=True)
                    with EventLogs(EventsSettings(url=url), Path(tmp)) as logs:
                        measure(logs, path, known, args.rounds)


if __name__ == "__main__":
    main()
