"""Events (DATA.md): validated from files and the API into ``Event`` rows that an event log stores.

Events arrive two ways through the same code: imported from a file (``events.csv`` or ``events.jsonl``)
and appended live (the API). A bad row is reported (file, line, field, reason) and skipped; it never
stops the import. Writes are idempotent: each event is keyed by a hash of (user, product, event,
timestamp), or of (user, event_id) when the sender gives an ``event_id``, so a duplicate delivery or a
re-import of the same file inserts nothing (an event sent without a timestamp gets the server's time, so only
its ``event_id`` makes a retry recognisable).
The schema (``event_schema.sql``) and ``ROW_COLUMNS`` are the one definition of a stored row; the backends
(``recommender.events.backend``: SQLite; ``recommender.events.postgres``) store and query it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from recommender.catalog.rows import RowRejected, has_bad_bytes, read_rows
from recommender.domain import RowError
from recommender.errors import RecommenderError
from recommender.events.trust import SERVER, TimeWindow

EVENT_TYPES = ("view", "cart", "purchase")
EVENT_LEVEL = {kind: level for level, kind in enumerate(EVENT_TYPES)}  # a stronger signal has a higher level
EVENT_COLUMNS = ("user_id", "product_id", "event", "timestamp", "session_id")
REQUIRED_COLUMNS = ("user_id", "product_id", "event", "timestamp")
MAX_ID_CHARS = 256
SCHEMA = Path(__file__).with_name("event_schema.sql")
# the stored row, in ``Event.row()`` order: a column added to event_schema.sql is added here and in ``row()``
ROW_COLUMNS = ("event_key", "user_id", "product_id", "event", "ts_us", "session_id", "trust", "origin")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_BAD_BYTES = re.compile("[\udc80-\udcff]")  # undecodable bytes under errors="surrogateescape"
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")  # C0/C1 control characters: never part of an id


class EventLogError(RecommenderError):
    """The event log or an events file cannot be used at all (not: a bad row, which is reported)."""


class EventLogUnavailable(EventLogError):
    """The event log's server cannot be reached (PostgreSQL down, pool exhausted): worth retrying later."""


class EventRejected(RowRejected):
    """An event breaks DATA.md; carries the offending field."""

    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(field_name, reason)
        self.args = (f"{field_name}: {reason}",)


class EventDeferred(EventRejected):
    """An event dated after the time window's end: rejected today, it may be valid on a later day."""


@dataclass(frozen=True)
class Event:
    """One valid event. ``timestamp`` is timezone-aware UTC; ``session_id`` is never empty."""

    user_id: str
    product_id: str
    event: str
    timestamp: datetime
    session_id: str
    event_id: str | None = None  # the sender's id: when given, it alone (per user) identifies the event
    trust: str = SERVER  # server (server key, import) | shopper | anonymous (a browser token): see events.trust
    origin: str = ""  # browser writes: keyed hash of the client network (events.trust.origin_of)

    @property
    def ts_us(self) -> int:
        """Microseconds since the epoch (what the log stores and sorts by)."""
        return to_us(self.timestamp)

    @property
    def key(self) -> str:
        """Idempotency key: the time, then a hash of the natural key (user, product, event, timestamp); or a hash of
        (user, event_id) when the sender gave an id."""
        if self.event_id is not None:
            return _id_key(self.user_id, self.event_id)
        return _key(self.user_id, self.product_id, self.event, self.ts_us)

    def row(self) -> tuple[str, str, str, str, int, str, str, str]:
        """The stored row, in ROW_COLUMNS order."""
        return (self.key, self.user_id, self.product_id, self.event, self.ts_us, self.session_id, self.trust,
                self.origin)


def _key(user: str, product: str, kind: str, ts_us: int) -> str:
    # The time prefix makes keys of a time-ordered import arrive in index order: far fewer pages rewritten.
    digest = hashlib.blake2b(f"{user}\x1f{product}\x1f{kind}\x1f{ts_us}".encode(), digest_size=12).hexdigest()
    return f"{ts_us:016x}{digest}"


def _id_key(user: str, event_id: str) -> str:
    # "id-" cannot start a time-prefixed key (hex digits only), so the two kinds of key never collide
    return "id-" + hashlib.blake2b(f"{user}\x1f{event_id}".encode(), digest_size=16).hexdigest()


def to_us(ts: datetime) -> int:
    """A datetime as whole microseconds since the epoch (exact, no float rounding); naive means UTC."""
    delta = (ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(us: int) -> datetime:
    """Inverse of ``to_us``."""
    return datetime.fromtimestamp(us // 1_000_000, tz=UTC).replace(microsecond=us % 1_000_000)


def parse_timestamp(value: Any) -> datetime:
    """DATA.md timestamp: ISO 8601; a value without an offset is taken as UTC."""
    text = str(value or "").strip()
    if not text:
        raise EventRejected("timestamp", "empty timestamp")
    try:
        ts = datetime.fromisoformat(text)
    except ValueError as exc:
        raise EventRejected("timestamp", f"not an ISO 8601 timestamp: {text[:40]!r}") from exc
    try:
        return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    except OverflowError as exc:  # e.g. 9999-12-31T23:59:59-05:00 is past year 9999 in UTC
        raise EventRejected("timestamp", f"out of range in UTC: {text[:40]!r}") from exc


def parse_event(row: Mapping[str, Any], known_products: Collection[str] | None = None,
                window: TimeWindow | None = None) -> Event:
    """Validate one row (CSV strings or JSON values) into an Event, or raise EventRejected naming the field;
    a timestamp outside ``window`` is rejected too."""
    user = _id(row, "user_id")
    product = _id(row, "product_id")
    if known_products is not None and product not in known_products:
        raise EventRejected("product_id", f"unknown product {product!r} (not in the catalog)")
    kind = str(row.get("event") or "").strip().lower()
    if kind not in EVENT_TYPES:
        raise EventRejected("event", f"unknown event type {str(row.get('event') or '')[:20]!r} "
                                     f"(expected {', '.join(EVENT_TYPES)})")
    ts = parse_timestamp(row.get("timestamp"))
    if window is not None and (problem := window.problem(ts)):
        raise (EventDeferred if ts > window.latest else EventRejected)("timestamp", problem)
    session = row.get("session_id")
    session = str(session).strip() if session is not None else ""
    if session and (problem := id_problem(session)):
        raise EventRejected("session_id", problem)
    event_id = _id(row, "event_id") if row.get("event_id") not in (None, "") else None
    return Event(user, product, kind, ts, session or default_session(user, ts), event_id)


def default_session(user_id: str, ts: datetime) -> str:
    """DATA.md's default session: the user's UTC day (``<user>-YYYY-MM-DD``)."""
    return f"{user_id}-{ts.date().isoformat()}"


def _id(row: Mapping[str, Any], name: str) -> str:
    value = row.get(name)
    if type(value) is not str:  # exact type checks: this runs twice per event
        if value is not None and type(value) is not int:
            raise EventRejected(name, "must be a string")
        value = "" if value is None else str(value)
    text = value.strip()
    problem = id_problem(text)
    if problem:
        raise EventRejected(name, problem if text else f"empty {name}")
    return text


def id_problem(text: str) -> str | None:
    """Why an id (already stripped) is unusable: empty, over-long or with control characters; None when fine."""
    if not text:
        return "is empty"
    if len(text) > MAX_ID_CHARS:
        return f"longer than {MAX_ID_CHARS} characters"
    if _CONTROL.search(text):
        return "contains control characters"
    return None


# ------------------------------------------------------------------------------------------- files
def find_events_file(folder: Path) -> Path | None:
    """A catalog's events file (events.csv, else events.jsonl), or None when it has none."""
    for name in ("events.csv", "events.jsonl"):
        if (folder / name).is_file():
            return folder / name
    return None


@dataclass
class EventReader:
    """Streams the valid events of a file; rejected rows (``errors``; ``deferred``: those from the future) and
    ``rows_read`` accumulate."""

    path: Path
    known_products: Collection[str] | None = None
    window: TimeWindow | None = None
    errors: list[RowError] = field(default_factory=list)
    rows_read: int = 0
    deferred: int = 0

    def __iter__(self) -> Iterator[Event]:
        if not self.path.is_file():
            raise EventLogError(f"events file not found: {self.path}")
        rows = read_rows(self.path, REQUIRED_COLUMNS, EventLogError)
        for line, raw in rows:
            self.rows_read += 1
            try:
                if isinstance(raw, RowRejected):
                    raise raw
                yield parse_event(raw, self.known_products, self.window)
            except RowRejected as exc:
                self.deferred += isinstance(exc, EventDeferred)
                self.errors.append(RowError(self.path.name, line, exc.field, exc.reason, _pid(raw)))


def _pid(raw: Mapping[str, Any] | RowRejected) -> str | None:
    value = raw.get("product_id") if isinstance(raw, Mapping) else raw.product_id
    return value.strip() or None if isinstance(value, str) and not has_bad_bytes(value) else None


# ------------------------------------------------------------------------------------------- the log
@dataclass(frozen=True)
class AppendResult:
    """What an append did: new events stored, and duplicates (already in the log) ignored."""

    inserted: int
    duplicates: int


@dataclass(frozen=True)
class RecentActivity:
    """A shopper as a personalised request reads them (``EventLog.recent_activity``): bare rows, no datetimes."""

    recent: tuple[tuple[str, str, str], ...] = ()  # (product_id, event, session_id), most recent first
    purchases: tuple[str, ...] = ()  # purchased product ids, most recent first, read apart from ``recent``


@dataclass(frozen=True)
class ImportSummary:
    """One file import: rows read, events stored, duplicates ignored, rows rejected (with reasons; ``deferred`` of
    them from the future); ``skipped``: the file was not read, the log holds it already (``import_file``)."""

    file: str
    rows_read: int
    imported: int
    duplicates: int
    errors: tuple[RowError, ...] = ()
    deferred: int = 0
    skipped: bool = False

    @property
    def rejected(self) -> int:
        """Rows reported and skipped."""
        return len(self.errors)

    def line(self) -> str:
        """One-line summary."""
        if self.skipped:
            return f"{self.file}: unchanged since its last import, skipped"
        return (f"{self.file}: {self.rows_read} rows read, {self.imported} imported, "
                f"{self.duplicates} duplicates ignored, {self.rejected} rejected")
