"""The event log's contract (``EventLog``) and what its SQL backends share: batching, file import, every query,
and the columns an older log gains when opened."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from tqdm import tqdm

from recommender.events.imports import RECALL, REMEMBER, FileImport
from recommender.events.log import (
    ROW_COLUMNS,
    AppendResult,
    Event,
    EventReader,
    ImportSummary,
    RecentActivity,
    from_us,
    to_us,
)
from recommender.events.trust import TimeWindow

Row = tuple[Any, ...]  # a stored row, in ROW_COLUMNS order
BATCH = 100_000  # rows per transaction of a bulk write
_END = 2**62  # "no upper bound" for ts_us and LIMIT alike
ACTIVITY_COLUMNS = "product_id, event, session_id"  # a row of ``RecentActivity.recent``
# columns event_schema.sql gained after logs existed, as (name, definition): a backend adds those a log lacks when it
# opens it (the events already stored were all written with the server key or imported, hence trusted)
ADDED_COLUMNS = (("trust", "TEXT NOT NULL DEFAULT 'server'"), ("origin", "TEXT NOT NULL DEFAULT ''"))
# who an event counts as in shop-wide counts (events.trust.identity in SQL): its user when trusted, else its network
_TRUSTED = "trust = 'server' OR origin = ''"
_IDENTITY = f"CASE WHEN {_TRUSTED} THEN user_id ELSE 'net:' || origin END"
# a session as shop-wide counts see it: a browser-written event's session is its client network's UTC day
# (integer division on both backends; both truncate alike)
_SESSION = f"CASE WHEN {_TRUSTED} THEN session_id ELSE 'net:' || origin || ':' || (ts_us / {86_400 * 1_000_000}) END"


class EventLog(Protocol):
    """Stored events, opened for one unit of work and closed after it (``with logs.open() as log:``).

    The contract every backend passes (``tests/integration/test_event_log_contract.py``):
    - writes are idempotent: a row whose ``event_key`` is stored already is a duplicate, counted and ignored, never
      an error; a retried API batch, a re-imported file or a repeated migration stores nothing twice, and concurrent
      writers (threads, processes, hosts) lose nothing;
    - ``import_file`` stores the good rows and reports each bad one (file, line, field, reason) in its summary; it
      remembers each complete import (``recommender.events.imports``) and, asked to, skips a file it holds already;
    - reads see every committed event, ranges are ``since <= timestamp < until``, and the order is the same on every
      backend: ``events``/``rows``/``raw_rows`` by (time, event_key), ``session_items`` by session id (bytewise);
    - each event keeps its trust level and origin; shop-wide counts (``session_items``, ``popularity``) count a
      browser-written event by its client network (``events.trust``), and ``user_purchases`` reads purchases apart
      from ``user_history``'s window; ``recent_activity`` is those two reads at once (same rows, same order);
    - a log made before a column of ``ADDED_COLUMNS`` existed gains it when opened, its events trusted;
    - a log that cannot be used raises ``EventLogError`` (``EventLogUnavailable`` when its server is unreachable).
    """

    def append(self, events: Iterable[Event], batch_size: int = BATCH) -> AppendResult:
        """Store events (one transaction per batch); those already stored are counted as duplicates."""
        ...

    def append_rows(self, rows: Iterable[Row], batch_size: int = BATCH) -> AppendResult:
        """Store raw rows (``raw_rows`` of another log: a migration), keys kept as they are."""
        ...

    def import_file(self, path: Path, known_products: Collection[str] | None = None,
                    progress: bool = False, window: TimeWindow | None = None,
                    skip_unchanged: bool = False) -> ImportSummary:
        """Validate and store a whole events file; bad rows (times outside ``window`` too) are reported and skipped.
        ``skip_unchanged``: not even read when the log's memory says importing it again would change nothing."""
        ...

    def count(self) -> int:
        """Number of stored events."""
        ...

    def events(self, since: datetime | None = None, until: datetime | None = None) -> Iterator[Event]:
        """Events in the range, in time order."""
        ...

    def rows(self, since: datetime | None = None, until: datetime | None = None
             ) -> Iterator[tuple[str, str, str, int]]:
        """Bare ``(user_id, product_id, event, ts_us)`` tuples in time order: the fast path for training."""
        ...

    def raw_rows(self) -> Iterator[Row]:
        """Every stored row as it is stored (ROW_COLUMNS), in time order."""
        ...

    def user_history(self, user_id: str, until: datetime | None = None, limit: int | None = None) -> list[Event]:
        """A user's events before ``until``, most recent first (at most ``limit``)."""
        ...

    def user_purchases(self, user_id: str, until: datetime | None = None, limit: int | None = None) -> list[Event]:
        """A user's purchases before ``until``, most recent first (at most ``limit``)."""
        ...

    def recent_activity(self, user_id: str, limit: int, purchase_limit: int) -> RecentActivity:
        """``user_history(user_id, limit=limit)`` as (product_id, event, session_id) rows and the product ids of
        ``user_purchases(user_id, limit=purchase_limit)``, in their orders: what each personalised request reads."""
        ...

    def session_items(self, since: datetime | None = None, until: datetime | None = None
                      ) -> Iterator[tuple[str, list[tuple[str, str]]]]:
        """Per session (a browser event's: its network's day), its (product_id, event) pairs in time order."""
        ...

    def popularity(self, since: datetime | None = None, until: datetime | None = None
                   ) -> dict[str, dict[str, int]]:
        """Distinct identities per product and event type in the range."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...

    def __enter__(self) -> EventLog: ...

    def __exit__(self, *exc: object) -> None: ...


class SqlEventLog:
    """What every backend shares: batching, file import and every query, in SQL with ``?`` parameters.

    A backend supplies ``_write`` (insert rows, ignoring stored keys; return how many were new), ``_fetch`` (a
    small result), ``_execute`` (one statement, no result), ``_stream`` (a large one, in bounded memory), ``close``
    and ``text_order`` (the collation that makes text order bytewise)."""

    text_order = ""

    def _write(self, rows: Sequence[Row]) -> int:
        raise NotImplementedError

    def _fetch(self, sql: str, params: Sequence[Any]) -> list[Row]:
        raise NotImplementedError

    def _execute(self, sql: str, params: Sequence[Any]) -> None:
        raise NotImplementedError

    def _stream(self, sql: str, params: Sequence[Any]) -> Iterator[Row]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> SqlEventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- writing
    def append(self, events: Iterable[Event], batch_size: int = BATCH) -> AppendResult:
        """Store events, one transaction per batch; events already in the log are ignored."""
        return self.append_rows((event.row() for event in events), batch_size)

    def append_rows(self, rows: Iterable[Row], batch_size: int = BATCH) -> AppendResult:
        """Store raw rows, one transaction per batch; keys already in the log are ignored."""
        inserted = seen = 0
        batch: list[Row] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= batch_size:
                inserted, seen = inserted + self._write(batch), seen + len(batch)
                batch = []
        if batch:
            inserted, seen = inserted + self._write(batch), seen + len(batch)
        return AppendResult(inserted, seen - inserted)

    def import_file(self, path: Path, known_products: Collection[str] | None = None,
                    progress: bool = False, window: TimeWindow | None = None,
                    skip_unchanged: bool = False) -> ImportSummary:
        """Validate and store a whole events file; bad rows (times outside ``window`` too) are reported and skipped.
        ``skip_unchanged``: not even read when its last complete import covers it (``FileImport.covers``)."""
        # digested before it is read: a file that changes during the import differs from its memory next time
        now = FileImport.of(path, known_products, window) if path.is_file() else None
        if skip_unchanged and now is not None:
            last = self._fetch(RECALL, (now.path,))
            if last and FileImport(*last[0]).covers(now):
                return ImportSummary(path.name, 0, 0, 0, skipped=True)
        reader = EventReader(path, known_products, window)
        events = tqdm(reader, unit="event", desc=f"import {path.name}", disable=not progress)
        result = self.append(events)
        if now is not None:  # remembered only once every row is stored
            self._execute(REMEMBER, (now.path, now.digest, now.context, reader.deferred, to_us(datetime.now(UTC))))
        return ImportSummary(path.name, reader.rows_read, result.inserted, result.duplicates, tuple(reader.errors),
                             reader.deferred)

    # ----------------------------------------------------------------- reading
    def count(self) -> int:
        """Number of stored events."""
        return int(self._fetch("SELECT COUNT(*) FROM events", ())[0][0])

    def events(self, since: datetime | None = None, until: datetime | None = None) -> Iterator[Event]:
        """Events with ``since <= timestamp < until``, in time order."""
        where, params = _range(since, until)
        sql = (f"SELECT user_id, product_id, event, ts_us, session_id, trust, origin FROM events {where} "
               f"ORDER BY ts_us, event_key{self.text_order}")
        for user, product, kind, ts, session, trust, origin in self._stream(sql, params):
            yield Event(user, product, kind, from_us(ts), session, trust=trust, origin=origin)

    def rows(self, since: datetime | None = None, until: datetime | None = None
             ) -> Iterator[tuple[str, str, str, int]]:
        """Like ``events`` but bare ``(user_id, product_id, event, ts_us)`` tuples: the fast path for training."""
        where, params = _range(since, until)
        sql = f"SELECT user_id, product_id, event, ts_us FROM events {where} ORDER BY ts_us, event_key{self.text_order}"
        yield from self._stream(sql, params)

    def raw_rows(self) -> Iterator[Row]:
        """Every stored row as stored (ROW_COLUMNS), in time order."""
        yield from self._stream(f"SELECT {', '.join(ROW_COLUMNS)} FROM events "
                                f"ORDER BY ts_us, event_key{self.text_order}", ())

    def user_history(self, user_id: str, until: datetime | None = None, limit: int | None = None) -> list[Event]:
        """A user's events before ``until``, most recent first (at most ``limit``)."""
        return self._user_events(user_id, "", until, limit)

    def user_purchases(self, user_id: str, until: datetime | None = None, limit: int | None = None) -> list[Event]:
        """A user's purchases before ``until``, most recent first: read apart from ``user_history``'s window, so
        a flood of views cannot push them out of what personalisation sees."""
        return self._user_events(user_id, " AND event = 'purchase'", until, limit)

    def _user_events(self, user_id: str, condition: str, until: datetime | None, limit: int | None) -> list[Event]:
        sql = ("SELECT user_id, product_id, event, ts_us, session_id FROM events WHERE user_id = ? AND ts_us < ?"
               f"{condition} ORDER BY ts_us DESC, event_key{self.text_order} LIMIT ?")
        end = to_us(until) if until is not None else _END
        rows = self._fetch(sql, (user_id, end, _END if limit is None else limit))
        return [Event(u, p, k, from_us(t), s) for u, p, k, t, s in rows]

    def recent_activity(self, user_id: str, limit: int, purchase_limit: int) -> RecentActivity:
        """``user_history``'s and ``user_purchases``' windows in one statement (one round trip to a database server, no
        datetimes): the shopper read of every personalised request. Rows: (part, product_id, event, session_id)."""
        rows = self._fetch(_activity_sql(self.text_order), (user_id, limit, user_id, purchase_limit))
        split = next((i for i, row in enumerate(rows) if row[0]), len(rows))
        return RecentActivity(tuple(row[1:] for row in rows[:split]), tuple(row[1] for row in rows[split:]))

    def session_items(self, since: datetime | None = None, until: datetime | None = None
                      ) -> Iterator[tuple[str, list[tuple[str, str]]]]:
        """Per session (in the range): its (product_id, event) pairs in time order. A browser-written event's session
        is its client network's day, so made-up sessions behind one address count as one (events.trust)."""
        where, params = _range(since, until)
        order = self.text_order
        # the expression again, not its alias: PostgreSQL takes no COLLATE on an output column's name
        sql = (f"SELECT {_SESSION}, product_id, event FROM events {where} "
               f"ORDER BY ({_SESSION}){order}, ts_us, event_key{order}")
        current: str | None = None
        items: list[tuple[str, str]] = []
        for session, product, kind in self._stream(sql, params):
            if session != current:
                if current is not None:
                    yield current, items
                current, items = session, []
            items.append((product, kind))
        if current is not None:
            yield current, items

    def popularity(self, since: datetime | None = None, until: datetime | None = None
                   ) -> dict[str, dict[str, int]]:
        """Distinct identities per product and event type in the range: ``{product_id: {event: count}}`` (a browser
        identity is its client network: events.trust)."""
        where, params = _range(since, until)
        out: dict[str, dict[str, int]] = {}
        for product, kind, n in self._fetch(f"SELECT product_id, event, COUNT(DISTINCT {_IDENTITY}) FROM events "
                                            f"{where} GROUP BY product_id, event", params):
            out.setdefault(product, {})[kind] = int(n)
        return out


def activity_window(columns: str, purchases: bool, text_order: str) -> str:
    """One of ``recent_activity``'s windows: a user's latest events (or purchases), ``LIMIT ?``, in the order
    ``user_history`` and ``user_purchases`` read them."""
    condition = " AND event = 'purchase'" if purchases else ""
    return (f"SELECT {columns} FROM events WHERE user_id = ?{condition} "
            f"ORDER BY ts_us DESC, event_key{text_order} LIMIT ?")


@cache
def _activity_sql(text_order: str) -> str:
    """Both windows in one statement, ordered again as a whole (neither backend promises that UNION ALL keeps its
    parts' order); PostgreSQL wants every subquery named."""
    columns = f"{{}} AS part, {ACTIVITY_COLUMNS}, ts_us, event_key"
    parts = [f"SELECT * FROM ({activity_window(columns.format(part), part == 1, text_order)}) AS {name}"
             for part, name in ((0, "recent"), (1, "bought"))]
    return (f"SELECT part, {ACTIVITY_COLUMNS} FROM ({' UNION ALL '.join(parts)}) AS activity "
            f"ORDER BY part, ts_us DESC, event_key{text_order}")


def _range(since: datetime | None, until: datetime | None) -> tuple[str, tuple[int, ...]]:
    clauses, params = [], []
    if since is not None:
        clauses.append("ts_us >= ?")
        params.append(to_us(since))
    if until is not None:
        clauses.append("ts_us < ?")
        params.append(to_us(until))
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", tuple(params)



def redacted(url: str) -> str:
    """``url`` without its password (passwords belong in ``PGPASSWORD`` or ``~/.pgpass`` anyway)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)).geturl()
