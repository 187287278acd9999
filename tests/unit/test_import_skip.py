"""The event log's memory of imported files: an unchanged file is skipped, anything that could change what its import
stores (its bytes, deferred future rows, the known products, the earliest time believed) imports it again."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from recommender.events.backend import SqliteEventLog
from recommender.events.log import EventDeferred, EventRejected, parse_event
from recommender.events.trust import TimeWindow

KNOWN = {"p1", "p2"}
HEADER = b"user_id,product_id,event,timestamp,session_id\n"
ROWS = b"u1,p1,view,2024-01-01T10:00:00Z,s1\nu1,p2,cart,2024-01-01T10:05:00Z,s1\n"
WINDOW = TimeWindow(datetime(1995, 1, 1, tzinfo=UTC), datetime(2024, 6, 1, tzinfo=UTC))


@pytest.fixture
def log(tmp_path: Path):
    with SqliteEventLog(tmp_path / "events.sqlite3") as log:
        yield log


@pytest.fixture
def events(tmp_path: Path) -> Path:
    path = tmp_path / "events.csv"
    path.write_bytes(HEADER + ROWS)
    return path


def test_the_same_file_twice_is_read_once(log: SqliteEventLog, events: Path) -> None:
    first = log.import_file(events, KNOWN, window=WINDOW, skip_unchanged=True)
    assert (first.rows_read, first.imported, first.skipped) == (2, 2, False)
    again = log.import_file(events, KNOWN, window=WINDOW, skip_unchanged=True)
    assert (again.rows_read, again.imported, again.skipped) == (0, 0, True)
    assert again.line() == "events.csv: unchanged since its last import, skipped"
    assert log.count() == 2


def test_without_skip_unchanged_the_file_is_read_and_its_rows_are_duplicates(log: SqliteEventLog,
                                                                              events: Path) -> None:
    log.import_file(events, KNOWN, window=WINDOW)
    forced = log.import_file(events, KNOWN, window=WINDOW)  # what `recsys refresh --force` asks for
    assert (forced.rows_read, forced.duplicates, forced.skipped) == (2, 2, False)


def test_the_memory_outlives_the_connection(tmp_path: Path, events: Path) -> None:
    with SqliteEventLog(tmp_path / "events.sqlite3") as log:
        log.import_file(events, KNOWN, window=WINDOW)
    with SqliteEventLog(tmp_path / "events.sqlite3") as log:
        assert log.import_file(events, KNOWN, window=WINDOW, skip_unchanged=True).skipped


def test_an_edited_file_is_imported(log: SqliteEventLog, events: Path) -> None:
    log.import_file(events, KNOWN, window=WINDOW, skip_unchanged=True)
    events.write_bytes(HEADER + ROWS + b"u2,p1,purchase,2024-01-02T09:00:00Z,s2\n")
    edited = log.import_file(events, KNOWN, window=WINDOW, skip_unchanged=True)
    assert (edited.rows_read, edited.imported, edited.duplicates, edited.skipped) == (3, 1, 2, False)
    # the same size and bytes but one: still a different file
    events.write_bytes(HEADER + ROWS.replace(b"10:05", b"10:06") + b"u2,p1,purchase,2024-01-02T09:00:00Z,s2\n")
    assert log.import_file(events, KNOWN, window=WINDOW, skip_unchanged=True).imported == 1
    assert log.count() == 4


def test_rows_from_the_future_are_read_again_until_none_is_deferred(log: SqliteEventLog, events: Path) -> None:
    events.write_bytes(HEADER + ROWS + b"u2,p1,view,2024-07-01T00:00:00Z,s2\n")
    first = log.import_file(events, KNOWN, window=WINDOW, skip_unchanged=True)
    assert (first.imported, first.rejected, first.deferred) == (2, 1, 1)
    same_day = log.import_file(events, KNOWN, window=WINDOW, skip_unchanged=True)
    assert not same_day.skipped and same_day.deferred == 1  # deferred last time: read again
    later = TimeWindow(WINDOW.earliest, datetime(2024, 8, 1, tzinfo=UTC))  # the clock has moved on
    caught_up = log.import_file(events, KNOWN, window=later, skip_unchanged=True)
    assert (caught_up.imported, caught_up.deferred, caught_up.skipped) == (1, 0, False)
    assert log.import_file(events, KNOWN, window=later, skip_unchanged=True).skipped
    assert log.count() == 3


def test_rows_of_the_past_and_bad_rows_are_not_deferred(log: SqliteEventLog, events: Path) -> None:
    events.write_bytes(HEADER + ROWS + b"u2,p1,view,1970-01-01T00:00:00Z,s2\nu2,p1,like,2024-01-03T00:00:00Z,s2\n")
    first = log.import_file(events, KNOWN, window=WINDOW, skip_unchanged=True)
    assert (first.rejected, first.deferred) == (2, 0)
    assert log.import_file(events, KNOWN, window=WINDOW, skip_unchanged=True).skipped


def test_a_product_added_to_the_catalog_imports_the_file_again(log: SqliteEventLog, events: Path) -> None:
    events.write_bytes(HEADER + ROWS + b"u2,p3,view,2024-01-02T00:00:00Z,s2\n")
    first = log.import_file(events, KNOWN, window=WINDOW, skip_unchanged=True)
    assert (first.imported, first.rejected, first.deferred) == (2, 1, 0)
    assert log.import_file(events, KNOWN, window=WINDOW, skip_unchanged=True).skipped
    grown = log.import_file(events, KNOWN | {"p3"}, window=WINDOW, skip_unchanged=True)
    assert (grown.skipped, grown.imported, grown.rejected) == (False, 1, 0)
    assert not log.import_file(events, None, window=WINDOW, skip_unchanged=True).skipped  # no catalog filter


def test_an_earlier_earliest_time_imports_the_file_again(log: SqliteEventLog, events: Path) -> None:
    events.write_bytes(HEADER + ROWS + b"u2,p1,view,1990-01-01T00:00:00Z,s2\n")
    assert log.import_file(events, KNOWN, window=WINDOW, skip_unchanged=True).rejected == 1
    wider = TimeWindow(datetime(1980, 1, 1, tzinfo=UTC), WINDOW.latest)  # event_time.earliest changed
    again = log.import_file(events, KNOWN, window=wider, skip_unchanged=True)
    assert (again.skipped, again.imported) == (False, 1)


def test_the_same_bytes_at_another_path_are_another_file(log: SqliteEventLog, events: Path, tmp_path: Path) -> None:
    log.import_file(events, KNOWN, window=WINDOW, skip_unchanged=True)
    copy = tmp_path / "copy.csv"
    copy.write_bytes(events.read_bytes())
    assert not log.import_file(copy, KNOWN, window=WINDOW, skip_unchanged=True).skipped
    assert log.import_file(copy, KNOWN, window=WINDOW, skip_unchanged=True).skipped


def test_a_log_made_before_the_memory_gains_it(tmp_path: Path, events: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with SqliteEventLog(path) as log:
        log.import_file(events, KNOWN, window=WINDOW)
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE imported_files")
    db.close()
    with SqliteEventLog(path) as log:
        assert not log.import_file(events, KNOWN, window=WINDOW, skip_unchanged=True).skipped  # nothing remembered
        assert log.import_file(events, KNOWN, window=WINDOW, skip_unchanged=True).skipped


def test_only_a_time_after_the_window_is_deferred() -> None:
    row = {"user_id": "u", "product_id": "p1", "event": "view"}
    with pytest.raises(EventDeferred):
        parse_event(dict(row, timestamp="2025-01-01T00:00:00Z"), KNOWN, WINDOW)
    with pytest.raises(EventRejected) as past:
        parse_event(dict(row, timestamp="1970-01-01T00:00:00Z"), KNOWN, WINDOW)
    assert not isinstance(past.value, EventDeferred)
