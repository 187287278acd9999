"""Model releases: what the nightly refresh publishes and the API serves, one folder per version.

A release folder ``<data_dir>/models/releases/<version>/`` holds ``release.json`` (the collaborative artifact
version it serves with, data hashes, the gate decision, the refresh summary), ``fusion.json`` (the fusion model),
``lists.sqlite`` (precomputed product-page lists), ``fingerprints.json`` (the store's product fingerprints the
lists were computed from) and the gate's evaluation ``metrics.json`` / ``report.html``. A folder is written
aside and renamed into place, so it is complete or absent. ``current`` names the served release (replaced by
rename, so readers see the old or the new name, never half of one); ``published.json`` is the stack of
publications that ``rollback`` pops.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from recommender.errors import RecommenderError

_VERSION_RE = re.compile(r"^r[0-9]{8}T[0-9]{6}Z(-[0-9]+)?$")
META = "release.json"
FUSION = "fusion.json"
LISTS = "lists.sqlite"
FINGERPRINTS = "fingerprints.json"
POPULARITY = "popularity.json"


class ReleaseError(RecommenderError):
    """A release is missing, incomplete, or cannot be published / rolled back."""


@dataclass(frozen=True)
class Release:
    """One saved release: its folder and recorded metadata."""

    version: str
    folder: Path
    meta: Mapping[str, Any]

    @property
    def collaborative_version(self) -> str | None:
        """The collaborative artifact version served with this release (None: cold start, no events)."""
        return self.meta.get("collaborative_version")

    @property
    def fusion_path(self) -> Path:
        """The release's fusion model (JSON)."""
        return self.folder / FUSION

    @property
    def lists_path(self) -> Path:
        """The precomputed product-page lists (SQLite)."""
        return self.folder / LISTS

    def popularity(self) -> tuple[dict[str, float], dict[str, float]] | None:
        """(popularity, recent popularity) per product as the release's gate evaluated them; None if absent."""
        path = self.folder / POPULARITY
        if not path.is_file():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        return dict(data["popularity"]), dict(data["recent_popularity"])

    def fingerprints(self) -> dict[str, str]:
        """product id → fingerprint of the stored product the lists were computed from ({} if not recorded)."""
        path = self.folder / FINGERPRINTS
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


class ReleaseStore:
    """Release folders under ``root`` with an atomic ``current`` pointer and a publication stack."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> ReleaseStore:
        """The default place, ``<data_dir>/models/releases``."""
        return cls(data_dir / "models" / "releases")

    def versions(self) -> list[str]:
        """Saved (complete) releases, oldest first."""
        if not self.root.is_dir():
            return []
        names = [p.name for p in self.root.iterdir()
                 if p.is_dir() and _VERSION_RE.match(p.name) and (p / META).is_file()]
        return sorted(names, key=_order)

    def current_version(self) -> str | None:
        """The published release, or None."""
        pointer = self.root / "current"
        return pointer.read_text(encoding="utf-8").strip() or None if pointer.is_file() else None

    def load(self, version: str | None = None) -> Release:
        """A saved release (default: the current one)."""
        version = version or self.current_version()
        if version is None:
            raise ReleaseError(f"no release published in {self.root} (run `recsys refresh`)")
        folder = self.root / version
        if not (folder / META).is_file():
            raise ReleaseError(f"no release {version!r} in {self.root}")
        return Release(version, folder, json.loads((folder / META).read_text(encoding="utf-8")))

    @contextmanager
    def create(self) -> Iterator[tuple[str, Path]]:
        """A new version name and an empty staging folder; on a clean exit the folder is renamed into place.

        The block must write ``release.json`` last-but-not-least: a folder without it is never listed.
        """
        version = self._new_version()
        tmp = self.root / f".tmp-{version}"
        tmp.mkdir(parents=True)
        try:
            yield version, tmp
            if not (tmp / META).is_file():
                raise ReleaseError(f"release {version} was not completed ({META} missing)")
            os.replace(tmp, self.root / version)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def clean_staging(self) -> int:
        """Remove staging folders a killed run left behind; returns how many."""
        if not self.root.is_dir():
            return 0
        stale = [p for p in self.root.iterdir() if p.name.startswith((".tmp-", ".current-", ".published-"))]
        for p in stale:
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
        return len(stale)

    def published(self) -> list[str]:
        """The publication stack, oldest first (its last entry is the current release)."""
        path = self.root / "published.json"
        return list(json.loads(path.read_text(encoding="utf-8"))) if path.is_file() else []

    def publish(self, version: str) -> None:
        """Atomically make ``version`` the served release and push it on the publication stack."""
        self.load(version)  # must exist and be complete
        stack = [v for v in self.published() if v != version] + [version]
        # Pointer first: a publish killed in between leaves a stack whose top is not current, which
        # rollback reads as "nothing to pop" and so still goes back, never forward.
        self._point(version)
        self._write_stack(stack)

    def rollback(self) -> str:
        """Return to the release published before the current one; returns it."""
        stack = self.published()
        current = self.current_version()
        if current is not None and stack and stack[-1] == current:
            stack = stack[:-1]
        stack = [v for v in stack if v in set(self.versions())]
        if not stack:
            raise ReleaseError("no earlier release to roll back to")
        # Stack first, for the same reason as in publish.
        self._write_stack(stack)
        self._point(stack[-1])
        return stack[-1]

    def _point(self, version: str) -> None:
        tmp = self.root / f".current-{os.getpid()}"
        tmp.write_text(version + "\n", encoding="utf-8")
        os.replace(tmp, self.root / "current")

    def _write_stack(self, stack: list[str]) -> None:
        tmp = self.root / f".published-{os.getpid()}"
        tmp.write_text(json.dumps(stack), encoding="utf-8")
        os.replace(tmp, self.root / "published.json")

    def _new_version(self) -> str:
        self.root.mkdir(parents=True, exist_ok=True)
        base = "r" + datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        version, n = base, 1
        while (self.root / version).exists() or (self.root / f".tmp-{version}").exists():
            version, n = f"{base}-{n}", n + 1
        return version


def _order(version: str) -> tuple[str, int]:
    """Creation order: the timestamp, then the same-second counter as a number (``-10`` after ``-2``)."""
    stamp, _, n = version.partition("Z")
    return (stamp, int(n[1:]) if n else 0)


def write_meta(folder: Path, meta: Mapping[str, Any]) -> None:
    """Write ``release.json`` (the marker that the folder is complete)."""
    (folder / META).write_text(json.dumps(dict(meta), indent=2, sort_keys=True, default=str), encoding="utf-8")
