"""Test helper: a data dir holding fixture events in the event log and a published collaborative model."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from threadpoolctl import threadpool_limits

from recommender.behaviour.als import ArtifactStore, fit_als
from recommender.behaviour.cooccurrence import build_cooccurrence
from recommender.catalog.reader import load_catalog
from recommender.config import CollaborativeSettings
from recommender.events.backend import SqliteEventLog
from recommender.events.interactions import interactions_from_rows

FAST_ALS = CollaborativeSettings(factors=16, iterations=5, threads=1)
FIXTURES_CLOCK = datetime(2024, 4, 1, tzinfo=UTC)  # just after the fixtures' last event: their decay means something


def trained_data_dir(data_dir: Path, catalog: Path, settings: CollaborativeSettings = FAST_ALS) -> str:
    """Import ``catalog``'s events.csv into ``<data_dir>``'s log, fit ALS + co-occurrence, publish; the version."""
    known = {p.product_id for p in load_catalog(catalog).products}
    with SqliteEventLog(data_dir / "events.sqlite3") as log:
        summary = log.import_file(catalog / "events.csv", known)
        assert summary.imported > 0, summary.line()
        interactions = interactions_from_rows(log.rows(), settings, reference=FIXTURES_CLOCK)
        with threadpool_limits(1, "blas"):
            model = fit_als(interactions, settings)
        co = build_cooccurrence(log.session_items(), interactions.items, settings.max_session_items)
    return ArtifactStore.in_data_dir(data_dir).save(model, co, {"events": interactions.events}, publish=True)
