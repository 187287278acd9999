"""The online recommendation facade: product page ("more like this") and shopper ("for you") lists.

``RecommendationService`` serves the published release (``recsys refresh``: collaborative artifacts, fusion model
and precomputed product-page lists); without one, the published behaviour artifacts of ``recsys train`` (if any:
a cold start works without) and the configured fusion weights. It wires them with the vector store (text/image
neighbours) and the event log (the shopper's recent and purchased products) into a ``FusionRanker``; the
``behavior`` signal uses the loaded ALS model's own factors, so a request never mixes two model versions. It never
loads a text or image encoder.

Product views (properties and vectors) come from the served release (``release_views``: its snapshot and vectors, as
of its refresh, no store round trip; a product it lacks from the store), else from the store, each kept in a bounded
cache. An anonymous product-page request is answered from the precomputed list when it has enough allowed items
(stock and filters checked on those views); a personal one re-ranks the anchor's stored candidate pool
(``ranking.pool``: the refresh's neighbours of the anchor, plus the shopper's own sources, scored by the same
features and model, without a vector-store query), labelled ``pool``; a filtered one, or one for a product without a
pool, is ranked live. "For you" needs no vector-store query at all (its sources are in memory). When Weaviate is
unreachable and a view must come from the store, a product page with a precomputed list is still answered from it
and the release's render snapshot, labelled ``fallback``.
A newly published version is picked up without restart: the pointers are re-read at most every
``reload_interval_s``, and ``reload()`` forces it.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from recommender.behaviour.als import Artifacts, ArtifactStore
from recommender.behaviour.cooccurrence import CoOccurrence
from recommender.caching import BoundedDict
from recommender.config import RankingSettings
from recommender.domain import BEHAVIOUR_VECTOR, ItemView, ProductFilter, RankedItem, RankQuery
from recommender.errors import ConfigError, RecommenderError, StoreUnavailable
from recommender.events.backend import EventLogs
from recommender.ranking.features import BehaviourContext, FeatureBuilder
from recommender.ranking.fusion import DEFAULT_WEIGHTS, RankingModel, Rules, allowed_ids, configured_model
from recommender.ranking.models import ReleaseModels, check_choice
from recommender.ranking.pool import NEIGHBOUR_VECTORS, pooled_sources
from recommender.ranking.precomputed import PrecomputedLists
from recommender.ranking.ranker import FusionRanker
from recommender.ranking.sources import (
    AlsForUser,
    AlsSimilar,
    AnchorKept,
    CandidateSource,
    CoOccurring,
    NearVector,
    Popular,
    SequenceNext,
    SessionCoOccurring,
    VectorNeighbours,
)
from recommender.releases import Release, ReleaseStore
from recommender.sequence.versions import sequence_root, sequence_versions
from recommender.store.item_cache import BehaviourOverlay, ItemCache, ItemLookup
from recommender.store.products import Hit

if TYPE_CHECKING:  # torch is imported only where a sequence model is loaded
    from recommender.sequence.store import SequenceModel


class ProductNotFound(RecommenderError):
    """The anchor product is not in the store."""

    def __init__(self, product_id: str) -> None:
        super().__init__(f"unknown product {product_id!r}")
        self.product_id = product_id


class RecommendationStore(Protocol):
    """What the service needs of the vector store (a ProductStore, or a reconnecting wrapper around one)."""

    def items(self, product_ids: list[str]) -> Mapping[str, tuple[dict[str, Any], dict[str, np.ndarray]]]: ...

    def near_vector(self, vector: np.ndarray, target: str, k: int = 10, filters: ProductFilter | None = None,
                    properties: Sequence[str] | None = None) -> list[Hit]: ...


@dataclass(frozen=True)
class Shopper:
    """What the event log says about a shopper: recent products (session first, most recent first), purchases."""

    history: tuple[str, ...] = ()
    purchased: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Recommendations:
    """A ranked list and where it came from: ``live`` ranking, ``pool`` (the anchor's stored pool re-ranked for the
    shopper), ``precomputed`` by the refresh, or ``fallback`` (the precomputed list with its refresh-time
    snapshot, served because the vector store is unreachable); ``history`` is the shopper's it was ranked for."""

    items: tuple[RankedItem, ...]
    served_from: str = "live"
    history: tuple[str, ...] = ()

    @property
    def degraded(self) -> bool:
        """True when stock, prices and personalisation may be stale or missing."""
        return self.served_from == "fallback"


@dataclass(frozen=True)
class _Loaded:
    """One consistent snapshot of the models a request ranks with (swapped whole on reload)."""

    key: tuple[str | float | None, ...]
    release: str | None
    version: str | None
    sources: tuple[CandidateSource, ...]
    items: ItemLookup
    features: FeatureBuilder
    model: RankingModel
    shopper_model: RankingModel  # the "for you" path's
    cooccurrence: CoOccurrence | None
    lists: PrecomputedLists | None
    # anchor → its sources with the stored pool in place of the store's neighbours (built once per anchor)
    pooled: BoundedDict[str, tuple[CandidateSource, ...]] = field(
        default_factory=lambda: BoundedDict(POOLS_KEPT), compare=False, repr=False)


POOLS_KEPT = 4096  # anchors whose pooled sources a loaded release keeps per process
SOURCE_NAMES = ("text", "image", "behavior", "cooccurrence", "session", "als_user", "popularity", "sasrec")


def enabled_sources(spec: str) -> frozenset[str]:
    """The configured candidate source names (comma-separated), checked against the known ones."""
    names = frozenset(n.strip() for n in spec.split(",") if n.strip())
    unknown = names - set(SOURCE_NAMES)
    if unknown or not names:
        raise ConfigError(f"setting ranking.sources: unknown or empty source name(s) {sorted(unknown)}; "
                          f"choose from {', '.join(SOURCE_NAMES)}")
    return names


class RecommendationService:
    """Ranks recommendations for product pages and shoppers. Thread-safe; one per process."""

    def __init__(self, store: RecommendationStore, data_dir: Path, settings: RankingSettings, events: EventLogs,
                 weights: Mapping[str, float] = DEFAULT_WEIGHTS, on_switch: Callable[[], None] | None = None
                 ) -> None:
        self.settings = settings
        self._enabled = enabled_sources(settings.sources)
        check_choice(settings.model)
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="sources")
        self.items = ItemCache(store, settings.item_cache, self._resident if settings.release_views else None)
        self._store = store
        self._near = nearest(store)
        self._events = events
        self._artifacts = ArtifactStore.in_data_dir(data_dir)
        self._sequence = sequence_versions(sequence_root(data_dir))
        self._releases = ReleaseStore.in_data_dir(data_dir)
        self._weights = dict(weights)
        self._on_switch = on_switch  # called after each switch to another release (the worker re-freezes its heap)
        self._lock = threading.Lock()
        self._checked = time.monotonic()
        self._loaded = self._load(self._key())

    # ----------------------------------------------------------------- public API
    @property
    def version(self) -> str | None:
        """The collaborative artifact version in use (None = cold start, no behaviour model)."""
        return self._loaded.version

    @property
    def release(self) -> str | None:
        """The release in use (None = no refresh published yet: the ``train`` artifacts are served)."""
        return self._loaded.release

    @property
    def fusion_kind(self) -> str:
        """The product pages' model: ``ltr`` (learning-to-rank trees), ``learned`` (logistic) or ``configured``."""
        return self._loaded.model.kind

    @property
    def shopper_fusion_kind(self) -> str:
        """The "for you" path's model kind (its own trees, or the same fallbacks)."""
        return self._loaded.shopper_model.kind

    def for_product(self, product_id: str, user_id: str | None = None, session_id: str | None = None, k: int = 10,
                    filters: ProductFilter | None = None, diversity: float | None = None) -> Recommendations:
        """Products to show on ``product_id``'s page, best first; raises ProductNotFound for an unknown anchor."""
        loaded = self._current()
        shopper = self.shopper(user_id, session_id)
        query = RankQuery(product_id, user_id, shopper.history, shopper.purchased, k, filters=filters)
        try:
            if loaded.lists is not None and not shopper.history and diversity in (None, self.settings.diversity):
                hit = self._precomputed(loaded.lists, query, self.items.get_many)
                if hit is not None:
                    return Recommendations(hit, "precomputed", shopper.history)
            if loaded.items.get(product_id) is None:
                raise ProductNotFound(product_id)
            ranker = self._ranker(loaded, diversity)
            pooled = self._pooled(loaded, product_id, filters)
            if pooled is not None:
                return Recommendations(tuple(ranker.with_sources(pooled).rank(query)), "pool", shopper.history)
            return Recommendations(tuple(ranker.rank(query)), "live", shopper.history)
        except StoreUnavailable:
            hit = self._precomputed(loaded.lists, query, loaded.lists.views) if loaded.lists is not None else None
            if hit is None:
                raise
            return Recommendations(hit, "fallback", shopper.history)

    def for_user(self, user_id: str, session_id: str | None = None, k: int = 10,
                 filters: ProductFilter | None = None, diversity: float | None = None) -> Recommendations:
        """Products for a shopper with no anchor page (an unknown shopper gets the popular products)."""
        loaded = self._current()
        shopper = self.shopper(user_id, session_id)
        query = RankQuery(None, user_id, shopper.history, shopper.purchased, k, filters=filters)
        return Recommendations(tuple(self._ranker(loaded, diversity, loaded.shopper_model).rank(query)), "live",
                               shopper.history)

    def views(self, product_ids: Iterable[str]) -> dict[str, ItemView]:
        """Views of products for rendering (the release's snapshot when the store is unreachable)."""
        ids = list(product_ids)
        try:
            return self.items.get_many(ids)
        except StoreUnavailable:
            lists = self._loaded.lists
            if lists is None:
                raise
            return lists.views(ids)

    def co_counts(self, anchor_id: str, product_id: str) -> dict[str, float]:
        """Sessions the two products share, per kind (``view``, ``purchase``); {} without a behaviour model."""
        co = self._loaded.cooccurrence
        if co is None:
            return {}
        return co.shared_sessions(anchor_id, product_id)

    def shopper(self, user_id: str | None, session_id: str | None) -> Shopper:
        """The shopper's recent products (this session's first) and purchases, from the event log."""
        if not user_id:
            return Shopper()
        with self._events.open() as log:
            # purchases are read apart from the recent window: a flood of views cannot evict them
            activity = log.recent_activity(user_id, self.settings.history_items, self.settings.purchase_history_items)
        recent, bought = activity.recent, activity.purchases
        in_session = [product for product, _, session in recent if session_id and session == session_id]
        history = tuple(dict.fromkeys([*in_session, *(product for product, _, _ in recent), *bought]))
        return Shopper(history, frozenset(bought) | {product for product, kind, _ in recent if kind == "purchase"})

    def reload(self) -> bool:
        """Switch to the published release / artifacts / fusion model when one changed; True when it switched."""
        with self._lock:
            self._checked = time.monotonic()
            key = self._key()
            if key == self._loaded.key:
                return False
            old, self._loaded = self._loaded, self._load(key)
            self.items.clear()  # stock and prices are re-read with the new version
        if old.lists is not None:
            old.lists.close()
        del old
        if self._on_switch is not None:
            self._on_switch()
        return True

    # ----------------------------------------------------------------- internals
    def _current(self) -> _Loaded:
        if time.monotonic() - self._checked >= self.settings.reload_interval_s:
            self.reload()
        return self._loaded

    def _resident(self, product_ids: list[str]) -> Mapping[str, ItemView]:
        """The served release's views of the products (``release_views``): no store round trip."""
        lists = self._loaded.lists
        if lists is None:
            return {}
        try:
            return lists.resident(product_ids)
        except sqlite3.ProgrammingError:  # closed by a reload in between: the store answers these instead
            return {}

    def _precomputed(self, lists: PrecomputedLists, query: RankQuery,
                     views_of: Callable[[Iterable[str]], Mapping[str, ItemView]]) -> tuple[RankedItem, ...] | None:
        """The anchor's precomputed list, rules and filters applied to ``views_of``'s views; None when it has no
        list, the anchor is gone, or too few items remain (then the request is ranked live)."""
        assert query.anchor_id is not None
        ranked = lists.get(query.anchor_id)
        if ranked is None:
            return None
        views = views_of([query.anchor_id, *(r.product_id for r in ranked)])
        if query.anchor_id not in views:
            return None
        rules = self._rules(None)
        shown = set(allowed_ids([r.product_id for r in ranked], views, query, rules))
        kept = [r for r in ranked if r.product_id in shown]
        if len(kept) < query.k and len(kept) < len(ranked):
            return None
        return tuple(kept[: query.k])

    def _pooled(self, loaded: _Loaded, product_id: str, filters: ProductFilter | None
                ) -> tuple[CandidateSource, ...] | None:
        """The sources ranking the anchor's page from its stored pool, when this request may be (``ranking.pool``
        on, no filter to push down into the vector store, a pool stored); else None (ranked live)."""
        if not self.settings.pool or loaded.lists is None or not (filters is None or filters.is_empty):
            return None
        kept = loaded.pooled.get(product_id)
        if kept is None:
            pool = loaded.lists.pool(product_id)
            if pool is None:
                return None
            kept = loaded.pooled.put(product_id, pooled_sources(loaded.sources, pool))
        return kept

    def _rules(self, diversity: float | None) -> Rules:
        s = self.settings
        return Rules(exclude_out_of_stock=s.exclude_out_of_stock, exclude_purchased=s.exclude_purchased,
                     max_per_variant_group=s.max_per_variant_group,
                     diversity=s.diversity if diversity is None else diversity)

    def _ranker(self, loaded: _Loaded, diversity: float | None, model: RankingModel | None = None) -> FusionRanker:
        return FusionRanker("online", loaded.sources, loaded.items, loaded.features, model or loaded.model,
                            self._rules(diversity), self.settings.per_source, self._pool)

    def _key(self) -> tuple[str | float | None, ...]:
        release = self._releases.current_version()
        sequence = self._sequence.current()
        if release is not None:
            return (release, None, sequence)
        return (None, self._artifacts.current_version(), sequence)

    def _load(self, key: tuple[str | float | None, ...]) -> _Loaded:
        release: Release | None = self._releases.load(str(key[0])) if key[0] is not None else None
        version = release.collaborative_version if release is not None else (str(key[1]) if key[1] else None)
        artifacts = self._artifacts.load(version) if version else None
        models = (ReleaseModels.load(release.folder, self.settings.model, self._weights) if release is not None
                  else ReleaseModels(configured_model(self._weights)))
        lists = PrecomputedLists(release.lists_path) if release is not None and release.lists_path.is_file() else None
        popularity, recent = self._popularity(release, artifacts)
        sequence = self._sequence_model()
        sources, items, features = ranking_parts(artifacts, popularity, recent, self.items, self._near,
                                                 self._enabled, sequence)
        choice = self.settings.model
        return _Loaded(key, release.version if release else None, version, sources, items, features,
                       models.ranking(choice), models.for_shopper(choice),
                       artifacts.cooccurrence if artifacts else None, lists)

    def _sequence_model(self) -> SequenceModel | None:
        """The published sequence model, if any (torch is imported only then)."""
        if self._sequence.current() is None:
            return None
        from recommender.sequence.store import SequenceStore

        return SequenceStore(self._sequence.root).load()

    def _popularity(self, release: Release | None, artifacts: Artifacts | None
                    ) -> tuple[dict[str, float], dict[str, float]]:
        """(popularity, recent popularity): the release's (what its gate evaluated with); else sessions per item
        from the published co-occurrence; else event counts from the log (cold start)."""
        if release is not None and (pop := release.popularity()) is not None:
            return pop
        if artifacts is not None:
            co = artifacts.cooccurrence
            return {co.items.id(i): float(n) for i, n in enumerate(co.sessions_per_item) if n > 0}, {}
        with self._events.open() as log:
            counts = log.popularity()
        return {pid: float(sum(kinds.values())) for pid, kinds in counts.items()}, {}


def nearest(store: RecommendationStore) -> NearVector:
    """The store's near-vector query as candidate sources call it: (product id, cosine) pairs, ids only."""

    def near(vector: np.ndarray, name: str, n: int, filters: ProductFilter | None) -> list[tuple[str, float]]:
        return [(h.product_id, 1.0 - h.distance) for h in store.near_vector(vector, name, n, filters, properties=[])]

    return near


def ranking_parts(artifacts: Artifacts | None, popularity: Mapping[str, float], recent: Mapping[str, float],
                  base_items: ItemLookup, near: NearVector, enabled: frozenset[str],
                  sequence: SequenceModel | None = None
                  ) -> tuple[tuple[CandidateSource, ...], ItemLookup, FeatureBuilder]:
    """The online ranker's sources, item lookup (with the model's own ``behavior`` vectors) and features, for one
    behaviour model (None: cold start) — shared by the service and the refresh's precomputed lists."""
    items: ItemLookup = BehaviourOverlay(base_items, artifacts.model.behaviour_vectors() if artifacts else {})
    sources: list[CandidateSource] = [VectorNeighbours(v, items, near) for v in NEIGHBOUR_VECTORS]
    if artifacts is not None:
        sources += [AnchorKept(AlsSimilar(artifacts.model, name=BEHAVIOUR_VECTOR)),
                    AnchorKept(CoOccurring(artifacts.cooccurrence)), SessionCoOccurring(artifacts.cooccurrence),
                    AlsForUser(artifacts.model)]
    if sequence is not None:
        sources.append(SequenceNext(sequence))
    sources.append(AnchorKept(Popular(dict(popularity))))
    context = BehaviourContext(artifacts.cooccurrence if artifacts else None, artifacts.model if artifacts else None,
                               dict(popularity), dict(recent), sequence)
    return tuple(s for s in sources if s.name in enabled), items, FeatureBuilder(context)

