"""`recsys train` as a library call: events → event log → ALS + co-occurrence → versioned artifacts → the store's
behaviour vectors.

Stages (each timed): read catalog ids · import events · build interactions · fit ALS · count co-occurrence ·
save artifacts · write vectors · publish. Unchanged training data and settings (same data hash and params
as the published version) skip the fit and only fill in missing vectors. Products that left the model lose
their behaviour vector: factors of different fits live in different spaces and must not be mixed.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from threadpoolctl import threadpool_limits

from recommender.behaviour.als import ArtifactStore, CollaborativeModel, model_params
from recommender.behaviour.fit import fit_models, session_items
from recommender.catalog.reader import CatalogReader
from recommender.config import Settings
from recommender.errors import RecommenderError
from recommender.events.backend import EventLog, event_log
from recommender.events.interactions import interactions_from_rows
from recommender.events.log import EventLogError, ImportSummary, find_events_file
from recommender.events.trust import time_window
from recommender.refresh.vectors import write_behaviour_vectors
from recommender.store.products import ProductStore
from recommender.timing import StageTimer


@dataclass(frozen=True)
class TrainOptions:
    """What `recsys train` was asked to do."""

    catalog: Path
    events: Path | None = None  # default: the catalog's events.csv/.jsonl
    until: datetime | None = None  # train on events before this time (default: all)
    force: bool = False  # refit even if data and settings are unchanged
    store: bool = True  # write the behaviour vectors (False: save artifacts only)
    progress: bool = True


@dataclass
class TrainSummary:
    """Counts and per-stage seconds; ``line()`` is the closing summary."""

    imported: ImportSummary | None = None
    events: int = 0
    users: int = 0
    items: int = 0
    factors: int = 0
    version: str = ""
    refit: bool = True
    vectors_written: int = 0
    vectors_cleared: int = 0
    not_in_store: int = 0
    timer: StageTimer = field(default_factory=lambda: StageTimer(digits=3))

    @property
    def seconds(self) -> dict[str, float]:
        """Seconds per stage."""
        return self.timer.seconds

    def stage(self, name: str) -> AbstractContextManager[None]:
        """Time a stage."""
        return self.timer.stage(name)

    def line(self) -> str:
        """One line of counts and timings."""
        imp = self.imported
        read = (f"events read {imp.rows_read}, imported {imp.imported}, rejected {imp.rejected}, "
                f"duplicates {imp.duplicates}; " if imp else "no events file; ")
        model = f"version {self.version}" + ("" if self.refit else " (unchanged, not refitted)")
        stages = ", ".join(f"{k} {v:.2f}s" for k, v in self.seconds.items())
        return (f"train: {read}trained on {self.events} events, {self.users} users, {self.items} items, "
                f"{self.factors} factors; {model}; behavior vectors written {self.vectors_written}, "
                f"cleared {self.vectors_cleared}, not in store {self.not_in_store}; {stages}")


def train_behaviour(options: TrainOptions, settings: Settings,
                    open_store: Callable[[], AbstractContextManager[ProductStore]]) -> TrainSummary:
    """Import the events, fit (or reuse) the behaviour models, write the store's vectors, publish."""
    summary = TrainSummary(factors=settings.collaborative.factors)
    with event_log(settings.events, settings.data_dir) as log:
        summary.imported = _import(options, settings, log, summary)
        model, refit = _fit(options, settings, log, summary)
    if options.store:
        with summary.stage("vectors"), open_store() as store:
            counts = write_behaviour_vectors(store, model, refit, options.progress)
        summary.vectors_written, summary.vectors_cleared = counts.written, counts.cleared
        summary.not_in_store = counts.not_in_store
    if refit:
        with summary.stage("publish"):
            ArtifactStore.in_data_dir(settings.data_dir).publish(summary.version)
    return summary


def _import(options: TrainOptions, settings: Settings, log: EventLog, summary: TrainSummary) -> ImportSummary | None:
    path = options.events or find_events_file(options.catalog)
    if path is None:
        return None
    with summary.stage("catalog"):
        reader = CatalogReader(options.catalog)
        for _ in reader:
            pass
        known = reader.seen_ids  # a product whose row is broken today still exists: keep its events
    if not known:
        raise EventLogError(f"{options.catalog}: the catalog has no products to attach events to")
    with summary.stage("import"):
        return log.import_file(path, known, progress=options.progress, window=time_window(settings.event_time))


def _fit(options: TrainOptions, settings: Settings, log: EventLog, summary: TrainSummary
         ) -> tuple[CollaborativeModel, bool]:
    """Fit and save a new version, or reuse the published one when data and settings are unchanged."""
    cfg = settings.collaborative
    artifacts = ArtifactStore.in_data_dir(settings.data_dir)
    with summary.stage("interactions"):
        # decay from the job's clock, never from the newest event; today's start, so a re-run today does no work
        clock = options.until or datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        interactions = interactions_from_rows(log.rows(until=options.until), cfg, reference=clock)
    summary.events, summary.users, summary.items = interactions.events, len(interactions.users), len(interactions.items)
    current = artifacts.load() if artifacts.current_version() else None
    if (current is not None and not options.force and current.model.data_hash == interactions.data_hash
            and current.meta.get("params") == model_params(cfg)):
        summary.version, summary.refit = current.version, False
        return current.model, False
    with threadpool_limits(1, "blas"):  # implicit runs its own threads; BLAS must not
        sessions = (session_items(list(log.events(until=options.until)), cfg.session_gap_hours).items()
                    if cfg.session_gap_hours > 0 else log.session_items(until=options.until))
        model, co = fit_models(interactions, sessions, cfg, items=interactions.items,
                               progress=options.progress, timer=summary.timer)
    if model is None:
        raise RecommenderError("no interactions to train on")
    with summary.stage("save"):
        meta = {"until": options.until.isoformat() if options.until else None, "events": interactions.events,
                "users": len(interactions.users), "items": len(interactions.items),
                "interactions": int(interactions.matrix.nnz), "sessions": co.sessions,
                "reference_us": interactions.reference_us, "seconds": dict(summary.seconds)}
        summary.version = artifacts.save(model, co, meta, publish=False)
    return model, True
