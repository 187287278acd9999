"""What an event log remembers of each file it imported, so that a refresh does not re-read a file it holds already.

A file's import is skipped when its bytes (sha256) and the import's context (the earliest event time believed and
the known product ids: everything besides the clock that decides which rows are rejected) are those of its last
complete import, and that import deferred no row for being from the future (such a row may be valid on a later day).
Anything else imports again, which the log's idempotent writes make safe. The memory is the ``imported_files`` table
of ``event_schema.sql``, so SQLite and PostgreSQL share this code and a log and its memory are never apart.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from recommender.events.trust import TimeWindow

# both SQLite (3.24+) and PostgreSQL spell an upsert this way
REMEMBER = ("INSERT INTO imported_files (path, digest, context, deferred, imported_at_us) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (path) DO UPDATE SET digest = excluded.digest, context = excluded.context, "
            "deferred = excluded.deferred, imported_at_us = excluded.imported_at_us")
RECALL = "SELECT path, digest, context, deferred FROM imported_files WHERE path = ?"


@dataclass(frozen=True)
class FileImport:
    """One import of one file: where it is, its bytes' and its context's digests, rows deferred as future ones."""

    path: str
    digest: str
    context: str
    deferred: int = 0

    @classmethod
    def of(cls, path: Path, known_products: Collection[str] | None, window: TimeWindow | None) -> FileImport:
        """The file as it is now, about to be imported with these known products and this window."""
        return cls(str(path.resolve()), file_digest(path), import_context(known_products, window))

    def covers(self, now: FileImport) -> bool:
        """Whether this (the last complete import) makes importing ``now`` again useless: same bytes, same context,
        and nothing deferred that the clock could have made valid since."""
        return (self.path, self.digest, self.context, self.deferred) == (now.path, now.digest, now.context, 0)


def file_digest(path: Path) -> str:
    """sha256 of the file's bytes, streamed."""
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def import_context(known_products: Collection[str] | None, window: TimeWindow | None) -> str:
    """A digest of what, besides the file and the clock, decides which of its rows are rejected."""
    h = hashlib.sha256(f"earliest={window.earliest.isoformat() if window else '-'}\n".encode())
    h.update(b"known=*" if known_products is None else json.dumps(sorted(known_products)).encode())
    return h.hexdigest()
