"""The event-log contract (``recommender.events.sql.EventLog``), passed by both backends: SQLite and a real, throwaway
PostgreSQL 15. Idempotent writes, bad rows reported, concurrent writers, reads alike on both, migration, training;
trust levels and origins, counts by identity, purchases apart, the time window, logs older than the trust columns."""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from jobs.cli import main as recsys
from recommender.config import CollaborativeSettings, EventsSettings, Settings
from recommender.events.backend import EventLogs
from recommender.events.interactions import interactions_from_rows
from recommender.events.log import Event, EventLogUnavailable, RecentActivity, parse_event
from recommender.events.trust import TimeWindow
from recommender.refresh.train import TrainOptions, train_behaviour
from recommender.store.ports import free_port
from tests.postgres_server import bindir, postgres_server

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
KNOWN = {"p1", "p2", "p3"}
HEADER = b"user_id,product_id,event,timestamp,session_id\n"
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"  # an absolute path: sqlite:////tmp/…


@pytest.fixture(params=["sqlite", "postgresql"])
def logs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventLogs]:
    url = sqlite_url(tmp_path / "events.sqlite3") if request.param == "sqlite" else request.getfixturevalue(
        "postgres_url")
    with EventLogs(EventsSettings(url=url, pool_size=8), tmp_path) as opened:
        yield opened


def ev(user: str, product: str, kind: str = "view", minutes: float = 0, session: str = "s1",
       event_id: str | None = None) -> Event:
    return Event(user, product, kind, T0 + timedelta(minutes=minutes), session, event_id)


def test_import_stores_the_good_rows_and_reports_each_bad_one(logs: EventLogs, tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_bytes(HEADER + b"u1,p1,view,2024-01-01T10:00:00Z,s1\n"
                     b"u1,p404,view,2024-01-01T10:01:00Z,s1\n"
                     b"u1,p2,view,not-a-time,s1\n"
                     b"u1,p2,wishlist,2024-01-01T10:02:00Z,s1\n"
                     b"u\xe9,p2,view,2024-01-01T10:02:00Z,s1\n"
                     b"u1,p2,cart,2024-01-01T10:03:00Z,s1\n"
                     b"u1,p2,cart,2024-01-01T10:03:00Z,s1\n")
    with logs.open() as log:
        summary = log.import_file(path, KNOWN)
        assert (summary.rows_read, summary.imported, summary.duplicates, summary.rejected) == (7, 2, 1, 4)
        assert [(e.file, e.line, e.field) for e in summary.errors] == [
            ("events.csv", 3, "product_id"), ("events.csv", 4, "timestamp"), ("events.csv", 5, "event"),
            ("events.csv", 6, "user_id")]
        again = log.import_file(path, KNOWN)
        assert (again.imported, again.duplicates, log.count()) == (0, 3, 2)
        assert [(e.product_id, e.event) for e in log.events()] == [("p1", "view"), ("p2", "cart")]


def test_retries_and_event_ids_store_nothing_twice(logs: EventLogs) -> None:
    with logs.open() as log:
        first = log.append([ev("u1", "p1"), ev("u1", "p2", minutes=1), ev("u1", "p2", minutes=1)])
        assert (first.inserted, first.duplicates) == (2, 1)
        tagged = ev("u2", "p3", minutes=5, event_id="e-1")
        assert log.append([tagged]).inserted == 1
        # the same event_id delivered again, with the server's (later) time: still the same event
        assert log.append([replace(tagged, timestamp=T0 + timedelta(hours=3))]).duplicates == 1
        assert log.append([ev("u3", "p3", minutes=5, event_id="e-1")]).inserted == 1  # ids are per user
        assert log.count() == 4


def test_reads_ranges_history_sessions_and_popularity(logs: EventLogs) -> None:
    events = [ev("u1", "p1", minutes=0, session="b"), ev("u1", "p2", "cart", minutes=1, session="b"),
              ev("u2", "p1", minutes=2, session="B"), ev("u2", "p3", "purchase", minutes=3, session="é"),
              ev("u1", "p3", minutes=4, session="a"), ev("u3", "p2", minutes=5, session="Z")]
    with logs.open() as log:
        log.append(reversed(events))
        assert list(log.events()) == events
        assert [e.product_id for e in log.events(since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=4))
                ] == ["p2", "p1", "p3"]
        assert [r[:3] for r in log.rows(until=T0 + timedelta(minutes=2))] == [("u1", "p1", "view"),
                                                                              ("u1", "p2", "cart")]
        assert [e.product_id for e in log.user_history("u1")] == ["p3", "p2", "p1"]
        assert [e.product_id for e in log.user_history("u1", limit=2, until=T0 + timedelta(minutes=4))
                ] == ["p2", "p1"]
        # sessions in bytewise order on every backend, whatever the database's collation
        assert [s for s, _ in log.session_items()] == ["B", "Z", "a", "b", "é"]
        assert dict(log.session_items())["b"] == [("p1", "view"), ("p2", "cart")]
        assert log.popularity() == {"p1": {"view": 2}, "p2": {"cart": 1, "view": 1}, "p3": {"purchase": 1, "view": 1}}
        assert log.popularity(since=T0 + timedelta(minutes=3)) == {"p3": {"purchase": 1, "view": 1},
                                                                   "p2": {"view": 1}}
        # two reads interleaved on one opened log
        left, right = log.events(), log.raw_rows()
        pairs = list(zip(left, right, strict=True))
        assert [(e.key, row[0]) for e, row in pairs] == [(e.key, e.key) for e in events]


def test_trust_and_origin_round_trip_and_browser_writes_count_by_network(logs: EventLogs) -> None:
    """Server events count per user; browser events per client network, in popularity and in sessions (one per
    network and UTC day), however many user ids and sessions they make up."""
    server = [ev("u1", "p1", minutes=0, session="s-u1"), ev("u2", "p1", minutes=1, session="s-u2")]
    browser = [replace(ev(f"fake{i}", "p2", minutes=2 + i, session=f"made-up-{i}"), trust="anonymous", origin="net-a")
               for i in range(5)]
    other = replace(ev("w1", "p2", "cart", minutes=9, session="w1-s"), trust="shopper", origin="net-b")
    day = int(T0.timestamp()) // 86_400
    with logs.open() as log:
        log.append([*server, *browser, other])
        assert list(log.events()) == [*server, *browser, other]  # trust and origin kept, in time order
        assert [(e.trust, e.origin) for e in log.events()][1:4] == [("server", ""), ("anonymous", "net-a"),
                                                                    ("anonymous", "net-a")]
        assert log.popularity() == {"p1": {"view": 2}, "p2": {"view": 1, "cart": 1}}
        sessions = dict(log.session_items())
        assert list(sessions) == [f"net:net-a:{day}", f"net:net-b:{day}", "s-u1", "s-u2"]  # bytewise
        assert sessions[f"net:net-a:{day}"] == [("p2", "view")] * 5
        # the same ids written with the server key are vouched for: each counts
        log.append([replace(e, trust="server", origin="", event_id=f"vouched-{n}") for n, e in enumerate(browser)])
        assert log.popularity()["p2"] == {"view": 6, "cart": 1}


def test_purchases_are_read_apart_from_the_history_window(logs: EventLogs) -> None:
    with logs.open() as log:
        log.append([ev("u", "bought", "purchase", minutes=0), ev("u", "old", "purchase", minutes=-5),
                    ev("v", "theirs", "purchase", minutes=1)])
        log.append(ev("u", f"v{i}", minutes=1 + i) for i in range(300))
        assert "bought" not in {e.product_id for e in log.user_history("u", limit=200)}
        assert [e.product_id for e in log.user_purchases("u", limit=200)] == ["bought", "old"]
        assert [e.product_id for e in log.user_purchases("u", until=T0)] == ["old"]
        assert [e.product_id for e in log.user_purchases("u", limit=1)] == ["bought"]


def test_recent_activity_is_the_history_and_purchase_reads_in_one(logs: EventLogs) -> None:
    """One statement on every backend, the same rows and order as the two reads it replaces: ties by event_key
    (bytewise), each window limited apart, purchases older than the recent window, nothing of other users."""
    tied = [ev("u", f"tie{i}", kind, minutes=50, session=session)
            for i, (kind, session) in enumerate([("view", "b"), ("purchase", "B"), ("cart", "é"), ("view", "a")])]
    with logs.open() as log:
        log.append([*tied, ev("u", "old", "purchase", minutes=-60), ev("v", "theirs", "purchase", minutes=50)])
        log.append(ev("u", f"v{i % 7}", "cart" if i % 5 == 0 else "view", minutes=i, session=f"s{i % 3}")
                   for i in range(40))
        for limit, purchase_limit in [(0, 0), (1, 1), (2, 200), (3, 1), (4, 2), (5, 3), (44, 1), (200, 200)]:
            got = log.recent_activity("u", limit, purchase_limit)
            assert got.recent == tuple((e.product_id, e.event, e.session_id)
                                       for e in log.user_history("u", limit=limit)), limit
            assert got.purchases == tuple(e.product_id for e in log.user_purchases("u", limit=purchase_limit))
        assert sorted(log.recent_activity("u", 4, 200).recent) == sorted((e.product_id, e.event, e.session_id)
                                                                        for e in tied)
        assert log.recent_activity("u", 1, 200).purchases == ("tie1", "old")
        assert log.recent_activity("nobody", 200, 200) == RecentActivity()


def test_import_rejects_times_outside_the_window(logs: EventLogs, tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_bytes(HEADER + b"u1,p1,view,2024-01-01T10:00:00Z,s1\n"
                     b"u1,p1,view,9999-12-31T00:00:00Z,s1\n"
                     b"u1,p2,view,1970-01-01T00:00:00Z,s1\n"
                     b"u1,p2,cart,2024-01-02T00:00:00Z,s1\n")
    window = TimeWindow(datetime(1995, 1, 1, tzinfo=UTC), datetime(2024, 6, 1, tzinfo=UTC))
    with logs.open() as log:
        summary = log.import_file(path, KNOWN, window=window)
        assert (summary.imported, summary.rejected) == (2, 2)
        assert [(e.line, e.field) for e in summary.errors] == [(3, "timestamp"), (4, "timestamp")]
        assert "in the future" in summary.errors[0].reason and "before 1995" in summary.errors[1].reason
        assert [(e.product_id, e.event) for e in log.events()] == [("p1", "view"), ("p2", "cart")]
        assert [e.product_id for e in log.events(until=datetime(2024, 1, 2, tzinfo=UTC))] == ["p1"]


def test_an_unchanged_file_is_skipped_and_a_changed_or_deferred_one_imported(logs: EventLogs,
                                                                            tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_bytes(HEADER + b"u1,p1,view,2024-01-01T10:00:00Z,s1\nu1,p4,view,2024-01-01T10:01:00Z,s1\n")
    window = TimeWindow(datetime(1995, 1, 1, tzinfo=UTC), datetime(2024, 6, 1, tzinfo=UTC))
    with logs.open() as log:
        assert log.import_file(path, KNOWN, window=window, skip_unchanged=True).imported == 1
        again = log.import_file(path, KNOWN, window=window, skip_unchanged=True)
        assert (again.skipped, again.rows_read) == (True, 0)
        grown = log.import_file(path, KNOWN | {"p4"}, window=window, skip_unchanged=True)  # a new catalog product
        assert (grown.skipped, grown.imported) == (False, 1)
        with path.open("ab") as f:
            f.write(b"u2,p2,cart,2024-07-01T00:00:00Z,s2\n")  # after the window's end: deferred
        for _ in range(2):  # a deferred row keeps the file from being skipped
            edited = log.import_file(path, KNOWN | {"p4"}, window=window, skip_unchanged=True)
            assert (edited.skipped, edited.rows_read, edited.deferred) == (False, 3, 1)
        assert not log.import_file(path, KNOWN | {"p4"}, window=window).skipped  # not asked to skip
        assert log.count() == 2


_OLD_TABLE = ("CREATE TABLE events (event_key TEXT PRIMARY KEY, user_id TEXT NOT NULL, product_id TEXT NOT NULL, "
              "event TEXT NOT NULL, ts_us BIGINT NOT NULL, session_id TEXT NOT NULL)")
_OLD_ROW = "INSERT INTO events VALUES ('k1', 'u', 'p', 'view', 1704067200000000, 's')"


def test_a_log_made_before_trust_levels_gains_the_columns_its_events_trusted(logs: EventLogs) -> None:
    if logs.path is not None:
        with sqlite3.connect(logs.path) as db:
            db.execute(_OLD_TABLE)
            db.execute(_OLD_ROW)
        db.close()
    else:
        with psycopg.connect(str(logs.settings.url), autocommit=True) as conn:
            conn.execute(_OLD_TABLE)
            conn.execute(_OLD_ROW)
    with logs.open() as log:
        assert [(e.user_id, e.trust, e.origin) for e in log.events()] == [("u", "server", "")]
        log.append([replace(ev("w", "p", minutes=5), trust="shopper", origin="o1"),
                    replace(ev("x", "p", minutes=6), trust="shopper", origin="o1")])
        assert log.popularity() == {"p": {"view": 2}}  # u, and the one network behind w and x
        assert [row[-2:] for row in log.raw_rows()] == [("server", ""), ("shopper", "o1"), ("shopper", "o1")]


def test_concurrent_writers_lose_nothing_and_store_nothing_twice(logs: EventLogs) -> None:
    universe = [ev(f"u{i % 37}", f"p{i % 101}", ("view", "cart", "purchase")[i % 3], minutes=i, session=f"s{i % 53}")
                for i in range(3000)]
    results: list[tuple[int, int]] = []

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        mine = rng.sample(universe, 1800)  # writers overlap: every event is sent by ~2.4 writers on average
        with logs.open() as log:
            for start in range(0, len(mine), 150):
                result = log.append(mine[start:start + 150])
                results.append((result.inserted, result.duplicates))

    with ThreadPoolExecutor(max_workers=4) as pool:
        for done in [pool.submit(writer, seed) for seed in range(4)]:
            done.result()  # re-raises a writer's error
    sent = {e.key for seed in range(4) for e in random.Random(seed).sample(universe, 1800)}
    with logs.open() as log:
        stored = [row[0] for row in log.raw_rows()]
    assert sorted(stored) == sorted(sent)  # nothing lost, nothing twice
    assert sum(i for i, _ in results) == len(sent) and sum(i + d for i, d in results) == 4 * 1800


def test_both_backends_answer_alike(tmp_path: Path, postgres_url: str) -> None:
    """The fixture shop's events, imported into each: every read gives the same answer, training the same matrix."""
    known = {line.split(",")[1] for line in (FIXTURES / "events.csv").read_text().splitlines()[1:]}
    answers = []
    for url in (sqlite_url(tmp_path / "events.sqlite3"), postgres_url):
        with EventLogs(EventsSettings(url=url), tmp_path) as opened, opened.open() as log:
            summary = log.import_file(FIXTURES / "events.csv", known)
            assert summary.imported > 5000 and summary.rejected == 0, summary.line()
            interactions = interactions_from_rows(log.rows(), CollaborativeSettings(), reference=T0)
            answers.append((list(log.raw_rows()), list(log.session_items()), log.popularity(),
                            [log.user_history(u, limit=20) for u in ("U0263", "U0001", "nobody")],
                            interactions.data_hash))
    assert answers[0] == answers[1]


def test_migrate_copies_every_row_once(tmp_path: Path, postgres_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    source = sqlite_url(tmp_path / "old.sqlite3")
    with EventLogs(EventsSettings(url=source), tmp_path) as opened, opened.open() as log:
        log.append([ev("u1", "p1"), ev("u1", "p2", minutes=1, event_id="client-7"), ev("u2", "p3", minutes=2)])
    assert recsys(["events", "migrate", "--from", source, "--to", postgres_url, "--no-progress"]) == 0
    assert "read 3, inserted 3, already there 0; target now holds 3" in capsys.readouterr().out
    assert recsys(["events", "migrate", "--from", source, "--to", postgres_url, "--no-progress"]) == 0
    assert "read 3, inserted 0, already there 3; target now holds 3" in capsys.readouterr().out
    with EventLogs(EventsSettings(url=postgres_url), tmp_path) as opened, opened.open() as log:
        # the sender's event_id still identifies its event after the move
        assert log.append([ev("u1", "p2", minutes=9, event_id="client-7")]).duplicates == 1
    assert recsys(["events", "migrate", "--from", source, "--to", source]) == 2  # refused: the same log


def test_training_reads_its_events_from_postgres(tmp_path: Path, postgres_url: str) -> None:
    """`recsys train` (artifacts only) with events.url = PostgreSQL imports, fits and publishes like with SQLite."""
    hashes = []
    for name, url in (("sqlite", sqlite_url(tmp_path / "events.sqlite3")), ("postgres", postgres_url)):
        settings = Settings(data_dir=tmp_path / name, events=EventsSettings(url=url),
                            collaborative=CollaborativeSettings(factors=8, iterations=2, threads=1))
        summary = train_behaviour(TrainOptions(FIXTURES, store=False, progress=False), settings, _no_store)
        assert summary.imported is not None and summary.imported.imported > 5000 and summary.refit, summary.line()
        hashes.append((summary.events, summary.users, summary.items))
    assert hashes[0] == hashes[1]


def _no_store() -> Iterator[None]:
    raise AssertionError("the store is not opened when store=False")


def test_an_unreachable_server_is_reported_as_unavailable(tmp_path: Path) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port('127.0.0.1')}/events"
    with EventLogs(EventsSettings(url=url, connect_timeout_s=1.0), tmp_path) as opened, \
            pytest.raises(EventLogUnavailable, match="cannot connect"):
        opened.open()


def test_a_parsed_event_round_trips_through_postgres(postgres_url: str, tmp_path: Path) -> None:
    event = parse_event({"user_id": "ü-1", "product_id": "p1", "event": "purchase",
                         "timestamp": "2024-02-29T23:59:59.123456+05:30", "session_id": "σ"})
    with EventLogs(EventsSettings(url=postgres_url), tmp_path) as opened, opened.open() as log:
        log.append([event])
        assert list(log.events()) == [replace(event, event_id=None)]


def test_a_lost_server_is_unavailable_then_the_pool_recovers(tmp_path: Path) -> None:
    """PostgreSQL stops under an open pool: writes fail as unavailable (nothing half-stored); once it is back the
    same pool serves again, without a restart of the process."""
    bins = bindir()
    assert bins is not None, "PostgreSQL binaries not found"
    with postgres_server(bins) as server:
        url = server.create_database("lost")
        with EventLogs(EventsSettings(url=url, connect_timeout_s=1.0), tmp_path) as opened:
            with opened.open() as log:
                assert log.append([ev("u1", "p1")]).inserted == 1
            server.stop()
            with pytest.raises(EventLogUnavailable), opened.open() as log:
                log.append([ev("u1", "p2", minutes=1)])
            server.start()
            deadline = time.monotonic() + 30
            while True:  # the pool reconnects in the background; bounded wait, no speed asserted
                try:
                    with opened.open() as log:
                        assert log.append([ev("u1", "p2", minutes=1)]).inserted == 1
                        assert log.count() == 2
                    break
                except EventLogUnavailable:
                    assert time.monotonic() < deadline, "the pool never reconnected"
                    time.sleep(0.5)
