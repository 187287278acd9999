"""Versioned artifacts on disk: the one mechanism behind releases, behaviour models and image-encoder checkpoints.

A version is a folder under ``root``, written aside (``.tmp-…``) and renamed into place, so it is complete or
absent. ``current`` names the version in use and is replaced by rename, so readers see the old or the new name,
never half of one: a text file holding the name, or (``symlink=True``, for checkpoints) a relative symlink, so
``<root>/current`` is itself a usable path. ``published.json`` is the history of what was published, which
``rollback`` pops.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

CURRENT = "current"
HISTORY = "published.json"
_STAGING = (".tmp-", ".current-", ".published-")


def _unique() -> str:
    return f"{os.getpid()}-{time.time_ns()}"


class VersionedDir:
    """Version folders under ``root`` (names matching ``pattern``), an atomic ``current`` pointer and a history."""

    def __init__(self, root: Path, pattern: re.Pattern[str], *, marker: str | None = None, symlink: bool = False,
                 order: Callable[[str], tuple[str, int]] | None = None) -> None:
        """``marker``: a file every complete version holds; ``order``: sort key of version names (default: name)."""
        self.root = root
        self._pattern = pattern
        self._marker = marker
        self._symlink = symlink
        self._order = order

    def versions(self) -> list[str]:
        """Saved (complete) versions, oldest first."""
        if not self.root.is_dir():
            return []
        names = [p.name for p in self.root.iterdir() if p.is_dir() and not p.is_symlink()
                 and self._pattern.match(p.name) and (self._marker is None or (p / self._marker).is_file())]
        return sorted(names, key=self._order) if self._order else sorted(names)

    def current(self) -> str | None:
        """The version ``current`` points at, or None."""
        pointer = self.root / CURRENT
        if self._symlink:
            return os.readlink(pointer) if pointer.is_symlink() else None
        return pointer.read_text(encoding="utf-8").strip() or None if pointer.is_file() else None

    def new_version(self, base: str) -> str:
        """``base``, or ``base-1``, ``base-2``, … when taken (versions made in the same second)."""
        self.root.mkdir(parents=True, exist_ok=True)
        version, n = base, 1
        while (self.root / version).exists() or (self.root / f".tmp-{version}").exists():
            version, n = f"{base}-{n}", n + 1
        return version

    @contextmanager
    def staging(self, name: str | None = None) -> Iterator[Path]:
        """An empty folder beside the versions (``.tmp-<name>``) to write one into; removed on exit unless
        ``commit`` moved it into place."""
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".tmp-{name or _unique()}"
        tmp.mkdir()
        try:
            yield tmp
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def commit(self, staging: Path, version: str) -> Path:
        """Rename a written staging folder into place as ``version`` (an existing version is kept as it is)."""
        target = self.root / version
        if not target.exists():
            os.replace(staging, target)
        return target

    def point(self, version: str) -> None:
        """Atomically make ``current`` name ``version`` (write aside, then rename)."""
        tmp = self.root / f".current-{_unique()}"
        if self._symlink:
            tmp.symlink_to(version, target_is_directory=True)
        else:
            tmp.write_text(version + "\n", encoding="utf-8")
        os.replace(tmp, self.root / CURRENT)

    def history(self) -> list[str]:
        """The publication history, oldest first (its last entry is the current version)."""
        path = self.root / HISTORY
        return list(json.loads(path.read_text(encoding="utf-8"))) if path.is_file() else []

    def publish(self, version: str) -> None:
        """Point ``current`` at ``version`` and push it on the history."""
        history = [v for v in self.history() if v != version] + [version]
        # Pointer first: a publish killed in between leaves a history whose top is not current, which
        # rollback reads as "nothing to pop" and so still goes back, never forward.
        self.point(version)
        self._write_history(history)

    def rollback(self) -> str | None:
        """Point ``current`` at the version published before it; that version, or None when there is none."""
        history = self.history()
        current = self.current()
        if current is not None and history and history[-1] == current:
            history = history[:-1]
        saved = set(self.versions())
        history = [v for v in history if v in saved]
        if not history:
            return None
        # History first, for the same reason as in publish.
        self._write_history(history)
        self.point(history[-1])
        return history[-1]

    def clean_staging(self) -> int:
        """Remove what a killed writer left behind (staging folders, pointer temp files); returns how many."""
        if not self.root.is_dir():
            return 0
        stale = [p for p in self.root.iterdir() if p.name.startswith(_STAGING)]
        for p in stale:
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() and not p.is_symlink() else p.unlink(missing_ok=True)
        return len(stale)

    def _write_history(self, history: list[str]) -> None:
        tmp = self.root / f".published-{_unique()}"
        tmp.write_text(json.dumps(history), encoding="utf-8")
        os.replace(tmp, self.root / HISTORY)
