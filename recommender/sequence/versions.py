"""Where sequence models are kept, without importing torch (the API checks for a new version every few seconds)."""

from __future__ import annotations

import re
from pathlib import Path

from recommender.artifacts import VersionedDir

CONFIG = "config.json"
VERSION_RE = re.compile(r"^s[0-9]{8}T[0-9]{6}Z(-[0-9]+)?$")


def sequence_root(data_dir: Path) -> Path:
    """The default place, ``<data_dir>/models/sequence``."""
    return data_dir / "models" / "sequence"


def sequence_versions(root: Path) -> VersionedDir:
    """The versioned folder of sequence models under ``root``."""
    return VersionedDir(root, VERSION_RE, marker=CONFIG)
