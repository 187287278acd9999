"""Copy one event log into another (``recsys events migrate``): how a shop moves its SQLite events to PostgreSQL.

Rows are copied as stored (their ``event_key`` included, so events keyed by the sender's ``event_id`` stay
recognisable), in batches, through the target's idempotent insert: a repeated or interrupted migration copies only
what is missing, and the API may keep writing to the target meanwhile.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from recommender.config import EventsSettings
from recommender.errors import ConfigError
from recommender.events.backend import EventLogs, event_log


@dataclass(frozen=True)
class MigrateSummary:
    """What a migration did: rows read from the source, new in the target, already there; target total; time."""

    source: str
    target: str
    read: int
    inserted: int
    duplicates: int
    target_count: int
    seconds: float

    def line(self) -> str:
        """One line of counts and timings."""
        return (f"events migrate: {self.source} → {self.target}: read {self.read}, inserted {self.inserted}, "
                f"already there {self.duplicates}; target now holds {self.target_count}; {self.seconds:.2f}s")


def migrate_events(source: EventsSettings, target: EventsSettings, data_dir: Path, batch_size: int = 50_000,
                   progress: bool = True) -> MigrateSummary:
    """Copy every row of ``source`` into ``target`` (idempotent)."""
    where = EventLogs(source, data_dir).describe(), EventLogs(target, data_dir).describe()
    if where[0] == where[1]:
        raise ConfigError(f"events migrate: source and target are the same log ({where[0]})")
    start = time.perf_counter()
    with event_log(source, data_dir) as src, event_log(target, data_dir) as dst:
        total = src.count()
        rows = tqdm(src.raw_rows(), total=total, unit="event", desc="migrate events", disable=not progress)
        result = dst.append_rows(rows, batch_size)
        count = dst.count()
    return MigrateSummary(where[0], where[1], result.inserted + result.duplicates, result.inserted,
                          result.duplicates, count, time.perf_counter() - start)
