"""The event log: validation with file/line/field reasons, idempotent appends, and the queries."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from recommender.events.backend import EventLog, SqliteEventLog
from recommender.events.log import (
    Event,
    EventLogError,
    EventRejected,
    RecentActivity,
    from_us,
    parse_event,
    to_us,
)
from recommender.events.sql import SqlEventLog

KNOWN = {"p1", "p2", "p3"}
HEADER = b"user_id,product_id,event,timestamp,session_id\n"


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def log(tmp_path: Path):
    with SqliteEventLog(tmp_path / "events.sqlite3") as log:
        yield log


def test_a_valid_row_becomes_an_event_with_a_default_session() -> None:
    e = parse_event({"user_id": " u1 ", "product_id": "p1", "event": "View", "timestamp": "2024-03-01T23:59:59+02:00"})
    assert e == Event("u1", "p1", "view", ts("2024-03-01T21:59:59"), "u1-2024-03-01")
    naive = parse_event({"user_id": "u1", "product_id": "p1", "event": "cart", "timestamp": "2024-03-01 10:00",
                         "session_id": "s9"})
    assert naive.timestamp == ts("2024-03-01T10:00:00") and naive.session_id == "s9"


@pytest.mark.parametrize(("row", "field", "reason"), [
    ({"user_id": "", "product_id": "p1", "event": "view", "timestamp": "2024-01-01"}, "user_id", "empty"),
    ({"user_id": "u", "product_id": "p9", "event": "view", "timestamp": "2024-01-01"}, "product_id", "unknown"),
    ({"user_id": "u", "product_id": "p1", "event": "like", "timestamp": "2024-01-01"}, "event", "unknown event"),
    ({"user_id": "u", "product_id": "p1", "event": "view", "timestamp": "yesterday"}, "timestamp", "ISO 8601"),
    ({"user_id": "u", "product_id": "p1", "event": "view", "timestamp": ""}, "timestamp", "empty"),
    ({"user_id": "u", "product_id": "p1", "event": "view", "timestamp": "9999-12-31T23:59:59-05:00"}, "timestamp",
     "out of range"),
    ({"user_id": "u", "product_id": "p1", "event": "view", "timestamp": "0001-01-01T00:00:00+05:00"}, "timestamp",
     "out of range"),
    ({"user_id": "u", "product_id": ["p1"], "event": "view", "timestamp": "2024-01-01"}, "product_id", "string"),
    ({"user_id": "u\x00", "product_id": "p1", "event": "view", "timestamp": "2024-01-01"}, "user_id", "control"),
    ({"user_id": "u", "product_id": "p1", "event": "view", "timestamp": "2024-01-01", "session_id": "s\n1"},
     "session_id", "control"),
])
def test_bad_rows_name_the_field_and_the_reason(row: dict, field: str, reason: str) -> None:
    with pytest.raises(EventRejected) as info:
        parse_event(row, KNOWN)
    assert info.value.field == field and reason in info.value.reason


def test_import_keeps_good_rows_and_reports_each_bad_one(log: EventLog, tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_bytes(HEADER + b"u1,p1,view,2024-01-01T10:00:00Z,s1\n"
                     b"u1,p404,view,2024-01-01T10:01:00Z,s1\n"
                     b"u1,p2,view,not-a-time,s1\n"
                     b"u1,p2,wishlist,2024-01-01T10:02:00Z,s1\n"
                     b",p2,view,2024-01-01T10:02:00Z,s1\n"
                     b"u1,p2,view,2024-01-01T10:02:00Z\n"
                     b"u\xe9,p2,view,2024-01-01T10:02:00Z,s1\n"
                     b"\n"
                     b"u1,p2,cart,2024-01-01T10:03:00Z,s1\n"
                     b"u1,p2,cart,2024-01-01T10:03:00Z,s1\n")
    summary = log.import_file(path, KNOWN)
    assert (summary.rows_read, summary.imported, summary.duplicates, summary.rejected) == (9, 2, 1, 6)
    assert [(e.file, e.line, e.field) for e in summary.errors] == [
        ("events.csv", 3, "product_id"), ("events.csv", 4, "timestamp"), ("events.csv", 5, "event"),
        ("events.csv", 6, "user_id"), ("events.csv", 7, "(row)"), ("events.csv", 8, "user_id")]
    assert "not valid UTF-8" in summary.errors[-1].reason and "p404" in summary.errors[0].reason
    assert [(e.product_id, e.event) for e in log.events()] == [("p1", "view"), ("p2", "cart")]


def test_reimport_and_live_duplicates_are_harmless(log: EventLog, tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_bytes(HEADER + b"u1,p1,view,2024-01-01T10:00:00Z,s1\nu2,p2,purchase,2024-01-02T10:00:00Z,\n")
    assert log.import_file(path, KNOWN).imported == 2
    again = log.import_file(path, KNOWN)
    assert (again.imported, again.duplicates) == (0, 2)
    live = parse_event({"user_id": "u2", "product_id": "p2", "event": "purchase", "timestamp": "2024-01-02T10:00Z"})
    result = log.append([live, live, Event("u2", "p3", "view", ts("2024-01-02T10:05:00"), "x")])
    assert (result.inserted, result.duplicates) == (1, 2)
    assert log.count() == 3


def test_empty_files_and_jsonl(log: EventLog, tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_bytes(b"")
    assert log.import_file(tmp_path / "empty.csv", KNOWN).rows_read == 0
    (tmp_path / "header.csv").write_bytes(HEADER)
    assert log.import_file(tmp_path / "header.csv", KNOWN).imported == 0
    (tmp_path / "nohead.csv").write_bytes(b"user_id,product_id,event\nu,p1,view\n")
    with pytest.raises(EventLogError, match="timestamp"):
        log.import_file(tmp_path / "nohead.csv", KNOWN)
    lines = [json.dumps({"user_id": "u1", "product_id": "p1", "event": "view", "timestamp": "2024-01-01T00:00:00Z"}),
             "{broken", "[1, 2]", json.dumps({"user_id": "u1", "product_id": "p2", "event": "cart",
                                               "timestamp": "2024-01-01T00:01:00Z", "session_id": "s"})]
    (tmp_path / "events.jsonl").write_text("\n".join(lines) + "\n")
    s = log.import_file(tmp_path / "events.jsonl", KNOWN)
    assert (s.imported, [(e.line, e.field) for e in s.errors]) == (2, [(2, "(row)"), (3, "(row)")])


def test_queries_range_history_sessions_popularity(log: EventLog) -> None:
    e = [Event("u1", "p1", "view", ts("2024-01-01T10:00:00"), "s1"),
         Event("u1", "p2", "view", ts("2024-01-01T10:01:00"), "s1"),
         Event("u1", "p2", "purchase", ts("2024-01-01T10:02:00"), "s1"),
         Event("u2", "p2", "view", ts("2024-01-03T09:00:00"), "s2"),
         Event("u1", "p3", "view", ts("2024-01-05T09:00:00"), "s3")]
    log.append(reversed(e))
    assert list(log.events()) == e
    assert list(log.events(since=ts("2024-01-01T10:01:00"), until=ts("2024-01-05T09:00:00"))) == e[1:4]
    assert [x.product_id for x in log.user_history("u1", limit=2)] == ["p3", "p2"]
    assert [x.product_id for x in log.user_history("u1", until=ts("2024-01-02T00:00:00"))] == ["p2", "p2", "p1"]
    assert dict(log.session_items(until=ts("2024-01-04T00:00:00"))) == {
        "s1": [("p1", "view"), ("p2", "view"), ("p2", "purchase")], "s2": [("p2", "view")]}
    assert log.popularity() == {"p1": {"view": 1}, "p2": {"view": 2, "purchase": 1}, "p3": {"view": 1}}


def two_reads(log: EventLog, user_id: str, limit: int, purchase_limit: int) -> RecentActivity:
    """What ``recent_activity`` replaces: ``user_history`` and ``user_purchases``, reduced to what it returns."""
    return RecentActivity(tuple((e.product_id, e.event, e.session_id) for e in log.user_history(user_id, limit=limit)),
                          tuple(e.product_id for e in log.user_purchases(user_id, limit=purchase_limit)))


def test_recent_activity_is_the_history_and_purchase_reads_in_one(log: EventLog) -> None:
    t = ts("2024-03-01T12:00:00")
    old = [Event("u", f"old{i}", "purchase", t - timedelta(days=30, minutes=i), "s0") for i in range(3)]
    tied = [Event("u", f"tie{i}", kind, t, f"s{i % 2}") for i, kind in enumerate(["view", "purchase", "cart", "view"])]
    views = [Event("u", f"v{i % 4}", "view", t - timedelta(minutes=i + 1), "s1") for i in range(12)]
    log.append([*old, *tied, *views, Event("other", "theirs", "purchase", t, "s1")])
    newest = sorted([*tied, *views], key=lambda e: (-e.ts_us, e.key))  # ties by event_key, as every read orders
    got = log.recent_activity("u", 5, 2)
    assert got.recent == tuple((e.product_id, e.event, e.session_id) for e in newest[:5])
    assert got.purchases == ("tie1", "old0")  # the purchase window reaches past the recent one
    for limit in (0, 1, 2, 3, 4, 5, 16, 200):
        for purchase_limit in (0, 1, 2, 4, 200):
            expected = two_reads(log, "u", limit, purchase_limit)
            assert log.recent_activity("u", limit, purchase_limit) == expected
            # the shared one-statement read (PostgreSQL's) is valid SQLite too, and reads the same
            assert SqlEventLog.recent_activity(log, "u", limit, purchase_limit) == expected
    assert log.recent_activity("nobody", 200, 200) == RecentActivity() == two_reads(log, "nobody", 200, 200)
    assert SqlEventLog.recent_activity(log, "nobody", 200, 200) == RecentActivity()
    assert log.recent_activity("other", 200, 200) == RecentActivity((("theirs", "purchase", "s1"),), ("theirs",))


def test_microsecond_timestamps_round_trip() -> None:
    t = datetime(2019, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    assert from_us(to_us(t)) == t and to_us(datetime(1970, 1, 1, tzinfo=UTC)) == 0


def test_an_event_id_makes_a_retry_without_timestamp_harmless(log: EventLog) -> None:
    first = parse_event({"user_id": "u1", "product_id": "p1", "event": "view", "timestamp": "2024-03-01T10:00:00",
                         "event_id": " e-1 "})
    retry = parse_event({"user_id": "u1", "product_id": "p1", "event": "view", "timestamp": "2024-03-01T10:00:07",
                         "event_id": "e-1"})
    other_user = parse_event({"user_id": "u2", "product_id": "p1", "event": "view",
                              "timestamp": "2024-03-01T10:00:07", "event_id": "e-1"})
    assert first.event_id == "e-1"
    assert log.append([first]).inserted == 1
    assert (log.append([retry, other_user]).inserted, log.count()) == (1, 2)
    with pytest.raises(EventRejected) as info:
        parse_event({"user_id": "u1", "product_id": "p1", "event": "view", "timestamp": "2024-03-01",
                     "event_id": "e\x00"})
    assert info.value.field == "event_id"


def test_events_url_selects_the_backend(tmp_path: Path) -> None:
    from recommender.config import load_settings
    from recommender.errors import ConfigError
    from recommender.events.backend import sqlite_path
    from recommender.events.sql import redacted

    assert sqlite_path(None, tmp_path) == tmp_path / "events.sqlite3"
    assert sqlite_path("sqlite:////srv/ev.db", tmp_path) == Path("/srv/ev.db")
    assert sqlite_path("sqlite:///rel/ev.db", tmp_path) == Path("rel/ev.db")
    assert sqlite_path("postgresql://db.internal/events", tmp_path) is None
    with pytest.raises(ConfigError, match=r"events\.url"):
        sqlite_path("mysql://db/events", tmp_path)
    settings = load_settings({"RECSYS_EVENTS__URL": "postgresql://recsys@db:5432/events",
                              "RECSYS_EVENTS__POOL_SIZE": "8"})
    assert (settings.events.url, settings.events.pool_size) == ("postgresql://recsys@db:5432/events", 8)
    assert redacted("postgresql://recsys:s3cret@db:5432/events") == "postgresql://recsys:***@db:5432/events"


def test_a_thread_keeps_its_sqlite_connection_until_the_logs_close(tmp_path: Path) -> None:
    from recommender.config import EventsSettings
    from recommender.events.backend import EventLogs

    logs = EventLogs(EventsSettings(), tmp_path)
    with logs.open() as first:
        first.append([Event("u1", "p1", "view", ts("2024-01-01T00:00:00"), "s1")])
    with logs.open() as second:
        assert second is first and second.count() == 1  # closing a unit of work kept the connection
    logs.close()
    with pytest.raises(sqlite3.ProgrammingError):
        first.count()  # closed with the logs
