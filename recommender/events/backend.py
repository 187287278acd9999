"""The SQLite event log (the embedded default) and ``EventLogs``, which opens the one ``events.url`` configures:
SQLite, or PostgreSQL (``recommender.events.postgres``) when several API hosts share one log."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from recommender.config import EventsSettings
from recommender.errors import ConfigError
from recommender.events.log import ROW_COLUMNS, SCHEMA, EventLogError, RecentActivity
from recommender.events.sql import (
    ACTIVITY_COLUMNS,
    ADDED_COLUMNS,
    EventLog,
    Row,
    SqlEventLog,
    activity_window,
    redacted,
)
from recommender.sqlite import connect

__all__ = ["EventLog", "EventLogs", "SqliteEventLog", "event_log", "sqlite_path"]

if TYPE_CHECKING:
    from recommender.events.postgres import PostgresPool


# recent_activity's two windows (SQLite's text order is bytewise already)
_RECENT = activity_window(ACTIVITY_COLUMNS, False, "")
_PURCHASES = activity_window("product_id", True, "")


def _locked(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


def _open(path: Path, any_thread: bool) -> sqlite3.Connection:
    """A connection with the schema in place (columns added to an older log); closed again if that fails."""
    db = connect(path, wal=True, autocommit=True, cache_mib=64, any_thread=any_thread)  # 64 MiB: bulk imports
    try:
        db.executescript(SCHEMA.read_text(encoding="utf-8"))
        have = {row[1] for row in db.execute("PRAGMA table_info(events)")}
        for name, definition in ADDED_COLUMNS:  # SQLite has no ADD COLUMN IF NOT EXISTS
            if name not in have:
                db.execute(f"ALTER TABLE events ADD COLUMN {name} {definition}")
    except sqlite3.Error:
        db.close()
        raise
    return db


class SqliteEventLog(SqlEventLog):
    """Events in one SQLite file (WAL): the embedded default. One instance per thread; ``close()`` when done."""

    def __init__(self, path: Path | str, any_thread: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._insert = (f"INSERT OR IGNORE INTO events ({', '.join(ROW_COLUMNS)}) "
                        f"VALUES ({', '.join('?' * len(ROW_COLUMNS))})")
        try:
            # several processes or threads opening a new file at once race to switch it to WAL, and that switch
            # answers "locked" without waiting for the busy timeout: try again, briefly
            for attempt in Retrying(retry=retry_if_exception(_locked), stop=stop_after_attempt(6),
                                    wait=wait_exponential(multiplier=0.1, max=2.0), reraise=True):
                with attempt:
                    self._db = _open(self.path, any_thread)
        except sqlite3.Error as exc:
            raise EventLogError(f"cannot open event log {self.path}: {exc}") from exc

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    def recent_activity(self, user_id: str, limit: int, purchase_limit: int) -> RecentActivity:
        """``SqlEventLog.recent_activity`` as two plain statements: in-process there is no round trip to save, and
        SQLite runs them faster than their UNION ALL (README: Figures)."""
        recent = self._db.execute(_RECENT, (user_id, limit)).fetchall()
        bought = self._db.execute(_PURCHASES, (user_id, purchase_limit)).fetchall()
        return RecentActivity(tuple(recent), tuple(product for (product,) in bought))

    def _write(self, rows: Sequence[Row]) -> int:
        before = self._db.total_changes
        try:
            with self._db:  # commits on success, rolls back on any exception
                self._db.execute("BEGIN")
                self._db.executemany(self._insert, rows)
        except sqlite3.Error as exc:
            raise EventLogError(f"cannot write to event log {self.path}: {exc}") from exc
        return self._db.total_changes - before

    def _fetch(self, sql: str, params: Sequence[Any]) -> list[Row]:
        return self._db.execute(sql, params).fetchall()

    def _execute(self, sql: str, params: Sequence[Any]) -> None:
        try:
            self._db.execute(sql, params)
        except sqlite3.Error as exc:
            raise EventLogError(f"cannot write to event log {self.path}: {exc}") from exc

    def _stream(self, sql: str, params: Sequence[Any]) -> Iterator[Row]:
        yield from self._db.execute(sql, params)


class _KeptSqliteLog(SqliteEventLog):
    """A thread's connection that ``EventLogs`` keeps between units of work: opening one per request would make
    each close the last connection, which checkpoints the WAL (an fsync) every time."""

    def close(self) -> None:
        """Keep the connection for the thread's next unit of work; ``EventLogs.close()`` closes it."""

    def shut(self) -> None:
        """Really close (from any thread: the connection was made for that, and its thread is done with it)."""
        super().close()


def sqlite_path(url: str | None, data_dir: Path) -> Path | None:
    """The SQLite file an ``events.url`` names (unset: ``<data_dir>/events.sqlite3``); None for PostgreSQL.

    ``sqlite:///PATH`` as SQLAlchemy spells it: ``sqlite:///rel/events.db`` is relative, ``sqlite:////abs/…`` absolute.
    """
    if not url:
        return data_dir / "events.sqlite3"
    if url.startswith("sqlite:///") and len(url) > len("sqlite:///"):
        return Path(url[len("sqlite:///"):]).expanduser()
    if url.startswith(("postgresql://", "postgres://")):
        return None
    raise ConfigError(f"events.url: expected sqlite:///PATH or postgresql://…, got {url.split('://')[0]!r}://…")


class EventLogs:
    """Opens the configured event log for one unit of work. One per process: for PostgreSQL it holds the connection
    pool, made on first use (so each forked API worker makes its own); ``close()`` it at the end."""

    def __init__(self, settings: EventsSettings, data_dir: Path) -> None:
        self.settings = settings
        self.path = sqlite_path(settings.url, data_dir)
        self._pool: PostgresPool | None = None
        self._lock = threading.Lock()
        self._local = threading.local()
        self._kept: list[_KeptSqliteLog] = []

    def open(self) -> EventLog:
        """A log for the caller's thread; close it (``with``) when done. SQLite: the thread's kept connection."""
        if self.path is not None:
            log: _KeptSqliteLog | None = getattr(self._local, "log", None)
            if log is None:
                log = self._local.log = _KeptSqliteLog(self.path, any_thread=True)
                with self._lock:
                    self._kept.append(log)
            return log
        with self._lock:
            if self._pool is None:
                from recommender.events.postgres import PostgresPool  # psycopg: the optional `postgres` extra

                self._pool = PostgresPool(str(self.settings.url), self.settings)
            pool = self._pool
        return pool.open()

    def describe(self) -> str:
        """Where the log is, without credentials (for messages)."""
        return f"sqlite:///{self.path}" if self.path is not None else redacted(str(self.settings.url))

    def close(self) -> None:
        """Close every kept SQLite connection, or the PostgreSQL pool."""
        with self._lock:
            pool, self._pool = self._pool, None
            kept, self._kept = self._kept, []
        self._local = threading.local()
        for log in kept:
            log.shut()
        if pool is not None:
            pool.close()

    def __enter__(self) -> EventLogs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def event_log(settings: EventsSettings, data_dir: Path) -> Iterator[EventLog]:
    """The configured log for one job: opened, then closed together with its pool."""
    with EventLogs(settings, data_dir) as logs, logs.open() as log:
        yield log
