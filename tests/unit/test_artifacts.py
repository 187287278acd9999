"""The versioned-folder helper in its symlink mode (image-encoder checkpoints); releases cover the text pointer."""

from __future__ import annotations

import re
from pathlib import Path

from recommender.artifacts import VersionedDir


def test_symlink_pointer_is_a_usable_path_and_commit_keeps_an_existing_version(tmp_path: Path) -> None:
    versions = VersionedDir(tmp_path, re.compile(r"^v[0-9]$"), symlink=True)
    for text in ("first", "second"):
        with versions.staging() as staging:
            (staging / "f.txt").write_text(text, encoding="utf-8")
            versions.commit(staging, "v1")
    versions.point("v1")
    assert (tmp_path / "current" / "f.txt").read_text(encoding="utf-8") == "first"
    assert versions.current() == "v1" and versions.versions() == ["v1"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["current", "v1"]
