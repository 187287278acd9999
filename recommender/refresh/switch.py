"""Switching the served release by hand (`recsys releases publish|rollback`): under the refresh lock (never while
a refresh runs), the ``current`` pointer moves atomically, then the store's behaviour vectors follow."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from recommender.behaviour.als import ArtifactStore
from recommender.refresh.stages import refresh_lock
from recommender.refresh.vectors import sync_behaviour
from recommender.releases import ReleaseStore
from recommender.store.products import ProductStore


def switch_release(data_dir: Path, version: str | None, open_store: Callable[[], AbstractContextManager[ProductStore]],
                   progress: bool = True) -> str:
    """Publish ``version`` (None: roll back to the release published before the current one); the one served."""
    releases = ReleaseStore.in_data_dir(data_dir)
    with refresh_lock(data_dir / "refresh.lock"):
        if version is None:
            version = releases.rollback()
        else:
            releases.publish(version)
        with open_store() as store:
            sync_behaviour(store, releases, ArtifactStore.in_data_dir(data_dir), progress)
    return version
