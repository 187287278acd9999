"""`recsys train`: events → event log → ALS + co-occurrence → versioned artifacts → `behavior` vectors in Weaviate.

Stages (each timed): read catalog ids · import events · build interactions · fit ALS · count co-occurrence ·
save artifacts · write vectors · publish. Unchanged training data and settings (same data hash and params
as the published version) skip the fit and only fill in missing vectors. Products that left the model lose
their `behavior` vector: factors of different fits live in different spaces and must not be mixed.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from threadpoolctl import threadpool_limits
from tqdm import tqdm

from recommender import components
from recommender.behaviour.als import ArtifactStore, CollaborativeModel, fit_als, model_params
from recommender.behaviour.cooccurrence import build_cooccurrence
from recommender.catalog.reader import CatalogReader
from recommender.config import Settings
from recommender.errors import StoreError
from recommender.events.interactions import interactions_from_rows
from recommender.events.log import (
    EventLog,
    EventLogError,
    EventRejected,
    ImportSummary,
    find_events_file,
    parse_timestamp,
)
from recommender.store.products import ProductStore
from recommender.timing import StageTimer

MAX_LISTED = 50
VECTOR = "behavior"


def add_parser(sub: Any) -> None:
    """Register the subcommand."""
    p = sub.add_parser("train", help="import events, fit ALS + co-occurrence, write behavior vectors")
    p.add_argument("--catalog", type=Path, required=True, help="catalog folder (DATA.md format)")
    p.add_argument("--events", type=Path, help="events file to import (default: the catalog's events.csv/.jsonl)")
    p.add_argument("--until", type=_timestamp, help="train on events before this ISO 8601 time (default: all)")
    p.add_argument("--force", action="store_true", help="refit even if data and settings are unchanged")
    p.add_argument("--no-store", action="store_true", help="save artifacts only; do not touch Weaviate")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def _timestamp(text: str) -> datetime:
    try:
        return parse_timestamp(text)
    except EventRejected as exc:
        raise argparse.ArgumentTypeError(exc.reason) from exc


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


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run the job; rejected event rows are reported, not fatal."""
    summary = TrainSummary(factors=settings.collaborative.factors)
    progress = not args.no_progress
    with EventLog.in_data_dir(settings.data_dir) as log:
        summary.imported = _import(args, log, summary, progress)
        model, refit = _fit(args, settings, log, summary, progress)
    if not args.no_store:
        with summary.stage("vectors"), components.open_store(settings) as store:
            write_vectors(store, model, refit, summary, progress)
    if refit:
        with summary.stage("publish"):
            ArtifactStore.in_data_dir(settings.data_dir).publish(summary.version)
    report(summary)
    return 0


def _import(args: argparse.Namespace, log: EventLog, summary: TrainSummary, progress: bool) -> ImportSummary | None:
    path = args.events or find_events_file(args.catalog)
    if path is None:
        return None
    with summary.stage("catalog"):
        reader = CatalogReader(args.catalog)
        for _ in reader:
            pass
        known = reader.seen_ids  # a product whose row is broken today still exists: keep its events
    if not known:
        raise EventLogError(f"{args.catalog}: the catalog has no products to attach events to")
    with summary.stage("import"):
        return log.import_file(path, known, progress=progress)


def _fit(args: argparse.Namespace, settings: Settings, log: EventLog, summary: TrainSummary,
         progress: bool) -> tuple[CollaborativeModel, bool]:
    """Fit and save a new version, or reuse the published one when data and settings are unchanged."""
    cfg = settings.collaborative
    artifacts = ArtifactStore.in_data_dir(settings.data_dir)
    with summary.stage("interactions"):
        interactions = interactions_from_rows(log.rows(until=args.until), cfg)
    summary.events, summary.users, summary.items = interactions.events, len(interactions.users), len(interactions.items)
    current = artifacts.load() if artifacts.current_version() else None
    if (current is not None and not args.force and current.model.data_hash == interactions.data_hash
            and current.meta.get("params") == model_params(cfg)):
        summary.version, summary.refit = current.version, False
        return current.model, False
    with summary.stage("als"), threadpool_limits(1, "blas"):  # implicit runs its own threads; BLAS must not
        model = fit_als(interactions, cfg, progress=progress)
    with summary.stage("cooccurrence"):
        co = build_cooccurrence(log.session_items(until=args.until), interactions.items, cfg.max_session_items)
    with summary.stage("save"):
        meta = {"until": args.until.isoformat() if args.until else None, "events": interactions.events,
                "users": len(interactions.users), "items": len(interactions.items),
                "interactions": int(interactions.matrix.nnz), "sessions": co.sessions,
                "reference_us": interactions.reference_us, "seconds": dict(summary.seconds)}
        summary.version = artifacts.save(model, co, meta, publish=False)
    return model, True


def write_vectors(store: ProductStore, model: CollaborativeModel, refit: bool, summary: TrainSummary,
                   progress: bool) -> None:
    """Set `behavior` on stored products the model knows; remove it from those it no longer knows."""
    store.ensure_collection()
    stored = set(store.iter_ids())
    have = store.ids_with_vector(VECTOR)
    vectors = model.behavior_vectors()
    _check_dimension(store, have, model.item_factors.shape[1])
    summary.not_in_store = len(set(vectors) - stored)
    todo = sorted(pid for pid in vectors if pid in stored and (refit or pid not in have))
    for pid in tqdm(todo, unit="product", desc="behavior vectors", disable=not progress):
        store.set_vector(VECTOR, {pid: vectors[pid]})
    summary.vectors_written = len(todo)
    summary.vectors_cleared = store.clear_vector(VECTOR, sorted(have - set(vectors)))


def _check_dimension(store: ProductStore, have: set[str], dim: int) -> None:
    """Weaviate fixes a named vector's length; a model with another factor count cannot be written over it."""
    if not have:
        return
    sample = next(iter(sorted(have)))
    stored = store.vectors([sample], names=[VECTOR]).get(sample, {}).get(VECTOR)
    if stored is not None and len(stored) != dim:
        raise StoreError(f"stored {VECTOR} vectors have {len(stored)} dimensions but the model has {dim} "
                         f"(collaborative.factors changed): set it back to {len(stored)}, or rebuild the "
                         "collection (`recsys vectorize --rebuild`) and train again")


def report(summary: TrainSummary) -> None:
    """Print each rejected event row (capped), then the summary line."""
    errors = summary.imported.errors if summary.imported else ()
    for err in errors[:MAX_LISTED]:
        print(f"rejected event: {err}", file=sys.stderr)
    if len(errors) > MAX_LISTED:
        print(f"... and {len(errors) - MAX_LISTED} more rejected events", file=sys.stderr)
    print(summary.line())
