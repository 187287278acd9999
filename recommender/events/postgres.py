"""The PostgreSQL event log (``events.url = postgresql://…``), shared by every API host: the only module that imports
psycopg.

The same schema file, rows and queries as SQLite (``SqlEventLog``). What PostgreSQL needs on top: connections come
from a per-process pool (psycopg_pool); a batch is one ``INSERT … SELECT … ORDER BY event_key ON CONFLICT DO NOTHING``
from a JSON array (small batches: one round trip) or from a COPYed temporary table (large ones); idempotent, and
concurrent writers lock keys in one order, so they never deadlock; long reads use server-side cursors (bounded
client memory); text sorts bytewise (``COLLATE "C"``).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool, PoolTimeout

from recommender.config import EventsSettings
from recommender.events.log import ROW_COLUMNS, SCHEMA, EventLogError, EventLogUnavailable
from recommender.events.sql import ADDED_COLUMNS, Row, SqlEventLog, redacted

_SCHEMA_LOCK = 0x7265637379730001  # pg_advisory_xact_lock key: one process at a time runs the schema script
_COLUMNS = ", ".join(ROW_COLUMNS)
_NEW = "ORDER BY event_key ON CONFLICT DO NOTHING"  # one lock order for every writer: no deadlock between them
# a small batch (the API's) is one statement, one round trip: its rows arrive as one JSON array that
# jsonb_populate_recordset turns into rows of the table's own type (a column added to the schema needs no SQL here)
_INSERT_JSON = (f"INSERT INTO events ({_COLUMNS}) SELECT {_COLUMNS} "
                f"FROM jsonb_populate_recordset(NULL::events, %s) {_NEW}")
# a large one (imports, migrations) is COPYed into a temporary table of the same shape, then moved
_STAGE = "CREATE TEMP TABLE IF NOT EXISTS events_in (LIKE events) ON COMMIT DELETE ROWS"
_INSERT_STAGED = f"INSERT INTO events ({_COLUMNS}) SELECT {_COLUMNS} FROM events_in {_NEW}"
COPY_FROM = 1_000  # rows: from this batch size on, COPY (3 round trips, but far faster per row)
_cursor_ids = itertools.count()


class PostgresPool:
    """The process's pool of connections to one PostgreSQL event log; the schema is ensured when it opens."""

    def __init__(self, url: str, settings: EventsSettings) -> None:
        self.where = redacted(url)
        self.timeout_s = settings.connect_timeout_s
        self._pool = ConnectionPool(url, min_size=1, max_size=max(1, settings.pool_size), open=False,
                                    timeout=settings.connect_timeout_s, name="recsys-events",
                                    kwargs={"autocommit": True, "connect_timeout": max(1, round(self.timeout_s))},
                                    check=ConnectionPool.check_connection)
        try:
            self._pool.open(wait=True, timeout=self.timeout_s)
            with self._pool.connection() as conn, conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                conn.execute(SCHEMA.read_text(encoding="utf-8"))
                for name, definition in ADDED_COLUMNS:
                    conn.execute(f"ALTER TABLE events ADD COLUMN IF NOT EXISTS {name} {definition}")
        except PoolTimeout as exc:
            self._pool.close()
            raise EventLogUnavailable(f"cannot connect to the event log at {self.where} within "
                                      f"{self.timeout_s:g}s") from exc
        except psycopg.Error as exc:
            self._pool.close()
            raise EventLogError(f"cannot open the event log at {self.where}: {exc}") from exc

    def open(self) -> PostgresEventLog:
        """A log on one pooled connection, given back on ``close()``."""
        try:
            conn = self._pool.getconn(timeout=self.timeout_s)
        except PoolTimeout as exc:
            raise EventLogUnavailable(f"no connection to the event log at {self.where} within "
                                      f"{self.timeout_s:g}s") from exc
        return PostgresEventLog(self._pool, conn, self.where)

    def close(self) -> None:
        """Close every connection."""
        self._pool.close()


class PostgresEventLog(SqlEventLog):
    """Events in PostgreSQL, on one connection borrowed from the pool. One instance per thread."""

    text_order = ' COLLATE "C"'

    def __init__(self, pool: ConnectionPool, conn: psycopg.Connection[Any], where: str) -> None:
        self._pool, self._conn, self.where = pool, conn, where

    def close(self) -> None:
        """Give the connection back to the pool."""
        if self._conn is not None:
            self._pool.putconn(self._conn)
            self._conn = None  # type: ignore[assignment]

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except psycopg.OperationalError as exc:
            raise EventLogUnavailable(f"event log at {self.where} unreachable while {doing}: {exc}") from exc
        except psycopg.Error as exc:
            raise EventLogError(f"event log at {self.where} failed while {doing}: {exc}") from exc

    def _write(self, rows: Sequence[Row]) -> int:
        with self._errors("writing"), self._conn.cursor() as cur:
            if len(rows) < COPY_FROM:
                cur.execute(_INSERT_JSON, (Jsonb([dict(zip(ROW_COLUMNS, row, strict=True)) for row in rows]),))
                return max(cur.rowcount, 0)
            with self._conn.transaction():
                cur.execute(_STAGE)
                with cur.copy(f"COPY events_in ({_COLUMNS}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                cur.execute(_INSERT_STAGED)
                return max(cur.rowcount, 0)

    def _fetch(self, sql: str, params: Sequence[Any]) -> list[Row]:
        with self._errors("reading"), self._conn.cursor() as cur:
            cur.execute(sql.replace("?", "%s"), params)  # our SQL; values are bound
            return cur.fetchall()

    def _execute(self, sql: str, params: Sequence[Any]) -> None:
        with self._errors("writing"), self._conn.cursor() as cur:
            cur.execute(sql.replace("?", "%s"), params)

    def _stream(self, sql: str, params: Sequence[Any]) -> Iterator[Row]:
        # WITH HOLD: a server-side cursor outside a transaction (autocommit), so reads may interleave freely
        name = f"events_read_{next(_cursor_ids)}"
        with self._errors("reading"), self._conn.cursor(name=name, withhold=True) as cur:
            cur.itersize = 10_000
            cur.execute(sql.replace("?", "%s"), params)
            yield from cur
