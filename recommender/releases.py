"""Model releases: what the nightly refresh publishes and the API serves, one folder per version.

A release folder ``<data_dir>/models/releases/<version>/`` holds ``release.json`` (the collaborative artifact
version it serves with, data hashes, the gate decision, the refresh summary), ``fusion.json`` (the fusion model),
``lists.sqlite`` (precomputed product-page lists), ``fingerprints.json`` (the store's product fingerprints the
lists were computed from) and the gate's evaluation ``metrics.json`` / ``report.html``. A folder is written
aside and renamed into place, so it is complete or absent. ``current`` names the served release and
``published.json`` is the stack of publications that ``rollback`` pops (``recommender.artifacts``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from recommender.artifacts import VersionedDir
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
        self.dir = VersionedDir(root, _VERSION_RE, marker=META, order=_order)

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> ReleaseStore:
        """The default place, ``<data_dir>/models/releases``."""
        return cls(data_dir / "models" / "releases")

    def versions(self) -> list[str]:
        """Saved (complete) releases, oldest first."""
        return self.dir.versions()

    def current_version(self) -> str | None:
        """The published release, or None."""
        return self.dir.current()

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
        version = self.dir.new_version("r" + datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"))
        with self.dir.staging(version) as tmp:
            yield version, tmp
            if not (tmp / META).is_file():
                raise ReleaseError(f"release {version} was not completed ({META} missing)")
            self.dir.commit(tmp, version)

    def clean_staging(self) -> int:
        """Remove staging folders a killed run left behind; returns how many."""
        return self.dir.clean_staging()

    def published(self) -> list[str]:
        """The publication stack, oldest first (its last entry is the current release)."""
        return self.dir.history()

    def publish(self, version: str) -> None:
        """Atomically make ``version`` the served release and push it on the publication stack."""
        self.load(version)  # must exist and be complete
        self.dir.publish(version)

    def rollback(self) -> str:
        """Return to the release published before the current one; returns it."""
        version = self.dir.rollback()
        if version is None:
            raise ReleaseError("no earlier release to roll back to")
        return version


def _order(version: str) -> tuple[str, int]:
    """Creation order: the timestamp, then the same-second counter as a number (``-10`` after ``-2``)."""
    stamp, _, n = version.partition("Z")
    return (stamp, int(n[1:]) if n else 0)


def write_meta(folder: Path, meta: Mapping[str, Any]) -> None:
    """Write ``release.json`` (the marker that the folder is complete)."""
    (folder / META).write_text(json.dumps(dict(meta), indent=2, sort_keys=True, default=str), encoding="utf-8")
