"""The one way the project opens SQLite files (event log, explanation cache, precomputed lists): PRAGMAs once."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def connect(path: Path, *, read_only: bool = False, wal: bool = False, autocommit: bool = False,
            any_thread: bool = False, cache_mib: int | None = None) -> sqlite3.Connection:
    """A connection to ``path``.

    ``read_only``: opened ``mode=ro`` (the file must exist; nothing can write through it). ``wal``: journal_mode
    WAL with synchronous NORMAL, for files read while another process writes (readers never wait for the
    writer; a crash loses at most the last transactions, never consistency). ``autocommit``: every statement
    commits unless inside an explicit BEGIN. ``any_thread``: the caller shares the connection between threads
    behind its own lock. ``cache_mib``: page cache size (SQLite's default is 2 MiB).
    """
    target = f"file:{path}?mode=ro" if read_only else str(path)
    db = sqlite3.connect(target, uri=read_only, check_same_thread=not any_thread,
                         isolation_level=None if autocommit else "DEFERRED", timeout=5.0)
    if wal:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
    if cache_mib is not None:
        db.execute(f"PRAGMA cache_size=-{int(cache_mib) * 1024}")
    return db
