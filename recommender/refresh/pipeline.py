"""`recsys refresh` as a library call: what the nightly scheduler runs.

Stages (each timed): lock · import events · tune (when due) · vectorize changed products · fit behaviour · gate ·
precompute lists · write release · publish · sync `behavior` vectors. Nothing the API serves changes before
*publish*, which is one atomic rename; a refresh killed anywhere leaves the served release untouched, and a re-run
finishes the work (every stage is idempotent: import and vectorize skip what is stored, a fresh tuned choice and an
unpublished behaviour fit with the same data are reused, staging folders are swept). Unchanged events and settings
keep the served model and re-rank only the product pages whose products changed; nothing changed at all means no
new release.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from threadpoolctl import threadpool_limits

from recommender.ask.vocabulary import vocabulary_path, write_vocabulary
from recommender.behaviour.als import Artifacts, ArtifactStore, model_params
from recommender.behaviour.fit import Behaviour, fit_behaviour
from recommender.catalog.reader import CatalogReader
from recommender.config import Settings, tuned_defaults
from recommender.domain import ItemView, RankedItem
from recommender.errors import StoreUnavailable
from recommender.evaluation.report import write_metrics, write_report
from recommender.events.backend import EventLog, event_log
from recommender.events.log import Event, find_events_file
from recommender.events.trust import time_window
from recommender.explain.cache import ExplanationCache, default_cache_path, generate_batch
from recommender.explain.evidence import list_evidence
from recommender.explain.llm import build_explainer
from recommender.ranking.fusion import DEFAULT_WEIGHTS, FusionModel, Rules, configured_model
from recommender.ranking.models import ReleaseModels
from recommender.ranking.precomputed import ListWriter
from recommender.ranking.ranker import FusionRanker
from recommender.ranking.service import enabled_sources, nearest, ranking_parts
from recommender.refresh.stages import (
    GateDecision,
    GateEvaluation,
    ListsSummary,
    changed_products,
    evaluate_gate,
    events_digest,
    fingerprint_digest,
    precompute_lists,
    refresh_lock,
)
from recommender.refresh.vectors import sync_behaviour
from recommender.releases import FINGERPRINTS, LISTS, POPULARITY, Release, ReleaseStore, write_meta
from recommender.store.item_cache import ItemCache
from recommender.store.products import ProductStore
from recommender.timing import StageTimer
from recommender.vectorize import VectorizeEngine

log = logging.getLogger(__name__)
MAX_LISTED = 50  # rejected event rows printed
# refresh settings that change no model: a change in them alone re-ranks nothing
NOT_MODEL_PARAMS = ("explain_items", "retune_days", "tune_max_tasks", "item_cache")
# the tune stage (``recommender.tuning.periodic``, injected by the composition root): (events, settings, progress)
# → the settings to refresh with and a JSON-safe record of what it did (``{"ran": bool, "reason": str, ...}``)
Tuner = Callable[[Sequence[Event], Settings, bool], tuple[Settings, dict[str, Any]]]


@dataclass(frozen=True)
class RefreshOptions:
    """What one refresh was asked to do."""

    catalog: Path  # catalog folder (DATA.md format)
    events: Path | None = None  # events file to import (default: the catalog's events.csv/.jsonl)
    allow_mass_delete: bool = False  # let vectorize delete over half of the store
    fusion_weights: Path | None = None  # a fusion model to use instead of learning one (it still faces the gate)
    force: bool = False  # re-import the events file, refit and re-rank everything even if nothing changed
    publish: bool = True  # False: build and evaluate the release, do not publish it
    progress: bool = True
    now: datetime | None = None  # the refresh's clock (decay, "recent"); default: today's start. Later events wait


@dataclass
class RefreshSummary:
    """Counts, decisions and per-stage seconds; ``line()`` is the closing summary."""

    events_imported: int = 0
    events_rejected: int = 0
    events_skipped: bool = False  # the events file was not read: the log holds it already (events.imports)
    events_total: int = 0
    vectorize: str = ""
    products: int = 0
    changed: int = 0
    removed: int = 0
    refit: bool = False
    lists: ListsSummary = field(default_factory=ListsSummary)
    explanations: str = ""
    release: str = ""
    decision: str = ""
    tune: dict[str, Any] = field(default_factory=dict)
    published: bool = False
    timer: StageTimer = field(default_factory=lambda: StageTimer(digits=2, announce="refresh", logger=log))

    @property
    def seconds(self) -> dict[str, float]:
        """Seconds per stage."""
        return self.timer.seconds

    def stage(self, name: str) -> AbstractContextManager[None]:
        """Time a stage (and log its start: an operator, or a fault test, sees where a run is)."""
        return self.timer.stage(name)

    def report(self) -> list[str]:
        """What a refresh prints at the end: the vectorize and explanation lines, the gate's decision, ``line()``."""
        tune = f"tune: {'ran, ' if self.tune.get('ran') else ''}{self.tune['reason']}" if self.tune else ""
        return [*filter(None, (tune, self.vectorize, self.explanations)), f"gate: {self.decision}", self.line()]

    def line(self) -> str:
        """One line of counts and timings."""
        stages = ", ".join(f"{k} {v:.1f}s" for k, v in self.seconds.items())
        model = "refitted" if self.refit else "kept"
        imported = "file unchanged, skipped; " if self.events_skipped else f"rejected {self.events_rejected}, "
        return (f"refresh: events +{self.events_imported} ({imported}total "
                f"{self.events_total}); products {self.products}, changed {self.changed}, removed {self.removed}; "
                f"model {model}; lists ranked {self.lists.ranked}, carried {self.lists.carried}; release "
                f"{self.release or '-'} {'PUBLISHED' if self.published else 'not published'}; {stages}")


def run_refresh(options: RefreshOptions, settings: Settings,
                open_store: Callable[[], AbstractContextManager[ProductStore]],
                vectorizer: Callable[[ProductStore, bool], VectorizeEngine], tuner: Tuner | None = None
                ) -> RefreshSummary:
    """Run one refresh under the lock; ``vectorizer(store, progress)`` builds the vectorize stage, ``tuner`` the
    tune stage (None: no tune stage)."""
    summary = RefreshSummary()
    started = time.perf_counter()  # total: the lock wait and connecting too
    try:
        with refresh_lock(settings.data_dir / "refresh.lock"), open_store() as store, \
                threadpool_limits(1, "blas"):  # implicit's ALS parallelises itself; BLAS must not
            Refresh(options, settings, store, vectorizer(store, options.progress), summary, tuner).run()
    except StoreUnavailable as exc:
        raise StoreUnavailable(f"{exc} (in stage {summary.timer.current or 'connect'}); the served release is "
                               "unchanged and nothing is lost: re-run the refresh when Weaviate is back") from exc
    summary.seconds["total"] = round(time.perf_counter() - started, 2)
    return summary


def refresh_params(settings: Settings, pinned_fusion: str | None) -> dict[str, Any]:
    """Everything besides the data that decides the model: a release made with other params is refitted."""
    refresh = {k: v for k, v in asdict(settings.refresh).items() if k not in NOT_MODEL_PARAMS}
    return {"collaborative": model_params(settings.collaborative), "refresh": refresh, "pinned_fusion": pinned_fusion,
            "sources": settings.ranking.sources, "model": settings.ranking.model,
            "per_source": settings.ranking.per_source}  # the learned fusion is fitted on candidate sets this deep


@dataclass(frozen=True)
class Candidate:
    """What the new release serves with."""

    artifacts: Artifacts | None
    models: ReleaseModels
    popularity: dict[str, float]
    recent: dict[str, float]
    decision: GateDecision
    gate: dict[str, Any]


class Refresh:
    """One run's state; the stages read top to bottom in ``run``."""

    def __init__(self, options: RefreshOptions, settings: Settings, store: ProductStore, vectorizer: VectorizeEngine,
                 summary: RefreshSummary, tuner: Tuner | None = None) -> None:
        self.options, self.settings, self.store, self.summary = options, settings, store, summary
        self.tuner = tuner
        self.vectorizer = vectorizer
        self.progress = options.progress
        self.releases = ReleaseStore.in_data_dir(settings.data_dir)
        self.artifacts = ArtifactStore.in_data_dir(settings.data_dir)
        self.items = ItemCache(store, settings.refresh.item_cache)
        self.near = nearest(store)
        # decay and "recent" are measured from the clock: --now, else today's start (UTC), so a re-run the same day
        # (after a kill, say) ends in the same state as one clean run; events after --now wait for a later run
        wall = datetime.now(UTC)
        self.clock = options.now or wall.replace(hour=0, minute=0, second=0, microsecond=0)
        self.until = (options.now or wall) + timedelta(seconds=settings.event_time.max_future_s)

    def run(self) -> None:
        """Every stage, in order."""
        s = self.summary
        self.releases.clean_staging()
        with s.stage("import"), event_log(self.settings.events, self.settings.data_dir) as log:
            self._import(log)
            events = list(log.events(until=self.until))
        s.events_total = len(events)
        if self.tuner is not None:
            with s.stage("tune"):  # before anything is fitted: every later stage uses the tuned settings
                self.settings, s.tune = self.tuner(events, self.settings, self.progress)
        with s.stage("vectorize"):
            self._vectorize()
        current = self.releases.load() if self.releases.current_version() else None
        with s.stage("changes"):
            fingerprints = {pid: fingerprint_digest(fp) for pid, fp in self.store.fingerprints().items()}
        changed, removed = changed_products(current.fingerprints() if current else {}, fingerprints)
        s.products, s.changed, s.removed = len(fingerprints), len(changed), len(removed)
        digest, params = events_digest(events), self._params()
        s.refit = (self.options.force or current is None or current.meta.get("events_digest") != digest
                   or current.meta.get("params") != params)
        if not s.refit and not changed and not removed:
            s.decision = f"nothing changed since release {current.version if current else '-'}; nothing to publish"
            self._sync_behaviour()
            return
        candidate = self._candidate(events, digest, params) if s.refit else self._kept(current)
        s.decision = candidate.decision.reason
        with s.stage("release"):
            version = self._write_release(candidate, current, fingerprints, changed, digest, params)
        s.release = version
        if candidate.decision.publish and self.options.publish:
            with s.stage("publish"):
                self.releases.publish(version)
                if candidate.artifacts is not None:
                    self.artifacts.publish(candidate.artifacts.version)
            s.published = True
            self._sync_behaviour()

    # ------------------------------------------------------------------------------------------ stages
    def _import(self, log: EventLog) -> None:
        path = self.options.events or find_events_file(self.options.catalog)
        if path is None:
            return
        reader = CatalogReader(self.options.catalog)
        for _ in reader:
            pass
        result = log.import_file(path, reader.seen_ids, progress=self.progress,
                                 window=time_window(self.settings.event_time), skip_unchanged=not self.options.force)
        self.summary.events_imported, self.summary.events_rejected = result.imported, result.rejected
        self.summary.events_skipped = result.skipped
        for err in result.errors[:MAX_LISTED]:
            print(f"rejected event: {err}", file=sys.stderr)

    def _vectorize(self) -> None:
        result = self.vectorizer.run(self.options.catalog, allow_mass_delete=self.options.allow_mass_delete)
        self.summary.vectorize = result.line()
        # the ask planner's words follow the store: gathered from the catalog just written
        write_vocabulary(CatalogReader(self.options.catalog),
                         vocabulary_path(self.settings.data_dir, self.settings.weaviate.collection))

    def _params(self) -> dict[str, Any]:
        pinned = self.options.fusion_weights.read_text(encoding="utf-8") if self.options.fusion_weights else None
        return refresh_params(self.settings, pinned)

    def _candidate(self, events: list, digest: str, params: dict[str, Any]) -> Candidate:
        """Fit behaviour on every event, learn (or pin) the fusion model and put it through the gate."""
        cfg = self.settings.collaborative
        with self.summary.stage("behaviour"):
            behaviour = fit_behaviour(events, cfg, now=self.clock) if events else None
            artifacts = self._save_behaviour(behaviour, digest, params) if behaviour and behaviour.model else None
        pinned = FusionModel.load(self.options.fusion_weights) if self.options.fusion_weights else None
        with self.summary.stage("gate"):
            gate = self._gate(events, pinned)
        return Candidate(artifacts, gate.candidate, behaviour.popularity if behaviour else {},
                         behaviour.recent_popularity if behaviour else {}, gate.decision, gate.payload)

    def _gate(self, events: list, pinned: FusionModel | None) -> GateEvaluation:
        return evaluate_gate(events, self.items, self.near, self._served_models(), self.settings.refresh,
                             self.settings.collaborative, Rules(), self.settings.ranking.per_source,
                             self.settings.ranking.model, pinned=pinned, progress=self.progress)

    def _save_behaviour(self, behaviour: Behaviour, digest: str, params: dict[str, Any]) -> Artifacts:
        """Save the fit as a collaborative version (unpublished), reusing one a killed run already saved."""
        assert behaviour.model is not None
        for version in reversed(self.artifacts.versions()):
            meta = json.loads((self.artifacts.root / version / "meta.json").read_text(encoding="utf-8"))
            if meta.get("events_digest") == digest and meta.get("refresh_params") == params:
                return self.artifacts.load(version)
        meta = {"events_digest": digest, "refresh_params": params, "events": self.summary.events_total,
                "users": behaviour.users, "items": len(behaviour.model.items),
                "sessions": behaviour.cooccurrence.sessions}
        return self.artifacts.load(self.artifacts.save(behaviour.model, behaviour.cooccurrence, meta, publish=False))

    def _kept(self, current: Release | None) -> Candidate:
        """Only products changed: keep the served release's model, re-rank the changed products' pages."""
        assert current is not None
        version = current.collaborative_version
        artifacts = self.artifacts.load(version) if version else None
        pop = current.popularity() or ({}, {})
        decision = GateDecision(True, f"published: the model of release {current.version} is kept (events and "
                                      f"settings unchanged); {self.summary.changed} changed and "
                                      f"{self.summary.removed} removed products re-ranked")
        gate = json.loads((current.folder / "metrics.json").read_text(encoding="utf-8")) \
            if (current.folder / "metrics.json").is_file() else {}
        return Candidate(artifacts, ReleaseModels.load(current.folder, self.settings.ranking.model), pop[0], pop[1],
                         decision, gate)

    def _served_models(self) -> ReleaseModels:
        """The models the API serves now (the gate's baseline)."""
        if self.releases.current_version():
            return ReleaseModels.load(self.releases.load().folder, self.settings.ranking.model)
        return ReleaseModels(configured_model(DEFAULT_WEIGHTS))

    def _write_release(self, c: Candidate, current: Release | None, fingerprints: dict[str, str],
                       changed: set[str], digest: str, params: dict[str, Any]) -> str:
        with self.releases.create() as (version, folder):
            c.models.save(folder)
            (folder / POPULARITY).write_text(json.dumps({"popularity": c.popularity, "recent_popularity": c.recent}),
                                             encoding="utf-8")
            (folder / FINGERPRINTS).write_text(json.dumps(fingerprints, sort_keys=True), encoding="utf-8")
            self._lists(folder / LISTS, c, current, sorted(fingerprints), changed)
            if c.gate:
                write_metrics(folder, c.gate)
            if c.gate.get("methods"):
                write_report(folder, c.gate)
            s = self.summary
            write_meta(folder, {
                "version": version, "created_at": datetime.now(UTC).isoformat(), "catalog": str(self.options.catalog),
                "collaborative_version": c.artifacts.version if c.artifacts else None, "events_digest": digest,
                "params": params, "gate": asdict(c.decision),
                "fusion": c.models.ranking(self.settings.ranking.model).kind, "refit": s.refit,
                "tuned": tuned_defaults(self.settings.data_dir)[1] or None,  # `recsys tune`'s choice in effect
                "tune": s.tune or None,  # this run's tune stage: ran or reused, and why
                "counts": {"events": s.events_total, "products": s.products, "changed": s.changed,
                           "removed": s.removed, "lists_ranked": s.lists.ranked, "lists_carried": s.lists.carried},
                "seconds": dict(s.seconds)})
        return version

    def _lists(self, path: Path, c: Candidate, current: Release | None, products: list[str],
               changed: set[str]) -> None:
        """Rank every product page (after a refit), or only the changed ones and carry the rest over."""
        s = self.summary
        sources, items, features = ranking_parts(c.artifacts, c.popularity, c.recent, self.items, self.near,
                                                 enabled_sources(self.settings.ranking.sources))
        r = self.settings.ranking
        rules = Rules(r.exclude_out_of_stock, False, r.max_per_variant_group, r.diversity)
        ranker = FusionRanker("refresh", sources, items, features, c.models.ranking(r.model), rules, r.per_source)
        writer = ListWriter(path)
        try:
            anchors = products if s.refit or current is None else sorted(changed)
            explain = self.settings.refresh.explain_items if self.settings.explain.backend != "template" else 0
            old = current.lists_path if not s.refit and current is not None and current.lists_path.is_file() else None
            kept = sorted(set(products) - changed)
            with s.stage("lists"):
                s.lists, top = precompute_lists(ranker, anchors, writer, self.settings.refresh.list_k,
                                                self.progress, keep=explain, near=self.near)
                if old is not None:
                    s.lists.carried = writer.carry(old, kept)
                    writer.carry(old, kept, "pools")  # the pool each carried list was ranked from
            with s.stage("snapshot"):
                if old is not None:  # an unchanged fingerprint means unchanged properties and vectors: still exact
                    writer.carry(old, kept, "items")
                    writer.carry(old, kept, "vectors")
                writer.put_views(self._snapshot(sorted(changed) if old is not None else products))
            with s.stage("explanations"):
                self._explain(ranker, top)
        finally:
            writer.close()

    def _snapshot(self, products: list[str]) -> Iterator[ItemView]:
        """The views of every stored product, as the lists stage read them (most are in the refresh's view cache)."""
        for i in range(0, len(products), 1000):
            yield from self.items.get_many(products[i:i + 1000]).values()

    def _explain(self, ranker: FusionRanker, top: dict[str, list[RankedItem]]) -> None:
        """With an LLM backend, write the top items' sentences of every re-ranked list into the cache."""
        x = self.settings.explain
        if x.backend == "template" or not top:
            return
        explainer = build_explainer(x.backend, x.model, x.url, x.api_key, x.timeout_s, x.max_chars, x.max_new_tokens)
        cache = ExplanationCache(x.cache_path or default_cache_path(self.settings.data_dir))
        try:
            result = generate_batch(self._evidence(ranker, top), explainer, cache, progress=self.progress)
            self.summary.explanations = result.line()
        finally:
            cache.close()
            close = getattr(explainer, "close", None)
            if close is not None:
                close()

    def _evidence(self, ranker: FusionRanker, top: dict[str, list[RankedItem]]) -> Iterator[Any]:
        """The evidence of each listed item as the API will build it for an anonymous product page."""
        co = ranker.features.behaviour.cooccurrence
        counts = co.shared_sessions if co is not None else (lambda a, b: {})
        for anchor, ranked in top.items():
            views = ranker.items.get_many([anchor, *(r.product_id for r in ranked)])
            if anchor in views:
                yield from (e for e in list_evidence(views[anchor], ranked, views, counts) if e is not None)

    def _sync_behaviour(self) -> None:
        """Write the served release's ALS factors into the store's `behavior` vectors (once per model)."""
        if self.releases.current_version() is None:
            return
        with self.summary.stage("behavior_vectors"):
            sync_behaviour(self.store, self.releases, self.artifacts, self.progress)

