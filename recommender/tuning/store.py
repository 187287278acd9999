"""Tuned defaults on disk: ``<data_dir>/models/tuned/<version>/tuned.json``, ``current`` naming the one in use.

``recommender.config.load_settings`` reads the current version's ``settings`` as defaults (above the dataclass
defaults, below a TOML file, the environment and flags), so the next train or refresh uses what was measured.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from recommender.artifacts import VersionedDir
from recommender.config import TUNED_DIR, TUNED_FILE
from recommender.tuning.search import TuneResult

FORMAT = "recsys-tuned/1"
_VERSION_RE = re.compile(r"^t[0-9]{8}T[0-9]{6}Z(-[0-9]+)?$")


def tuned_dir(data_dir: Path) -> VersionedDir:
    """The versioned folder tuned settings are kept in."""
    return VersionedDir(data_dir / TUNED_DIR, _VERSION_RE, marker=TUNED_FILE)


def save_tuned(data_dir: Path, result: TuneResult, source: dict[str, Any], publish: bool = True) -> str:
    """Record a tuning result as a new version (``source``: what it was measured on) and make it current."""
    versions = tuned_dir(data_dir)
    version = versions.new_version("t" + datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"))
    with versions.staging(version) as tmp:
        record = {"format": FORMAT, "version": version, "created_at": datetime.now(UTC).isoformat(),
                  "settings": {"collaborative": result.chosen}, "source": source, "result": result.as_dict()}
        (tmp / TUNED_FILE).write_text(json.dumps(record, indent=2, sort_keys=True), encoding="utf-8")
        versions.commit(tmp, version)
    if publish:
        versions.publish(version)
    return version


def tuned_at(data_dir: Path) -> tuple[str, datetime] | None:
    """The current tuned version and when it was recorded (``created_at``, else the time in its name); None when
    nothing was tuned yet."""
    versions = tuned_dir(data_dir)
    version = versions.current()
    if version is None:
        return None
    try:
        record = json.loads((versions.root / version / TUNED_FILE).read_text(encoding="utf-8"))
        return version, datetime.fromisoformat(record["created_at"])
    except (OSError, ValueError, KeyError):  # a record written before created_at: its name holds the time
        return version, datetime.strptime(version[1:17], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
