"""The online recommendation facade: product page ("more like this") and shopper ("for you") lists.

``RecommendationService`` wires the published behaviour artifacts (ALS + co-occurrence, if any: a cold start
works without), the fusion model (learned ``<data_dir>/models/fusion/current.json``, else the configured
weights), the vector store (near-vector neighbours per named vector) and the event log (the shopper's recent
and purchased products) into a ``FusionRanker``. It never loads a text or image encoder: every vector it needs
is already in the store. A newly published version is picked up without restart: the ``current`` pointer is
re-read at most every ``reload_interval_s``, and ``reload()`` forces it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from recommender.collaborative import Artifacts, ArtifactStore
from recommender.config import RankingSettings
from recommender.cooccurrence import CoOccurrence
from recommender.domain import ItemView, ProductFilter, RankedItem, RankQuery
from recommender.errors import ConfigError, RecommenderError
from recommender.events import EventLog
from recommender.features import BehaviourContext, FeatureBuilder
from recommender.fusion import DEFAULT_WEIGHTS, FusionModel, Rules, configured_model
from recommender.item_cache import ItemCache
from recommender.ranking import FusionRanker
from recommender.retrieval import (
    AlsForUser,
    CandidateSource,
    CoOccurring,
    Popular,
    SessionCoOccurring,
    VectorNeighbours,
)
from recommender.store import Hit

NEIGHBOUR_VECTORS = ("text", "image", "behavior")


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
class _Loaded:
    """One consistent snapshot of the models a request ranks with (swapped whole on reload)."""

    version: str | None
    fusion_stamp: float | None
    sources: tuple[CandidateSource, ...]
    features: FeatureBuilder
    model: FusionModel
    cooccurrence: CoOccurrence | None


def fusion_model_path(data_dir: Path) -> Path:
    """Where a learned fusion model is published."""
    return data_dir / "models" / "fusion" / "current.json"


SOURCE_NAMES = ("text", "image", "behavior", "cooccurrence", "session", "als_user", "popularity")


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

    def __init__(self, store: RecommendationStore, data_dir: Path, settings: RankingSettings,
                 weights: Mapping[str, float] = DEFAULT_WEIGHTS) -> None:
        self.settings = settings
        self._enabled = enabled_sources(settings.sources)
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="sources")
        self.items = ItemCache(store)
        self._store = store
        self._data_dir = data_dir
        self._artifacts = ArtifactStore.in_data_dir(data_dir)
        self._weights = dict(weights)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._checked = 0.0
        self._loaded = self._load(self._artifacts.current_version(), _stamp(fusion_model_path(data_dir)))

    # ----------------------------------------------------------------- public API
    @property
    def version(self) -> str | None:
        """The collaborative artifact version in use (None = cold start, no behaviour model)."""
        return self._loaded.version

    @property
    def fusion_kind(self) -> str:
        """``learned`` or ``configured``."""
        return self._loaded.model.kind

    def for_product(self, product_id: str, user_id: str | None = None, session_id: str | None = None, k: int = 10,
                    filters: ProductFilter | None = None, diversity: float | None = None) -> list[RankedItem]:
        """Products to show on ``product_id``'s page, best first; raises ProductNotFound for an unknown anchor."""
        if self.items.get(product_id) is None:
            raise ProductNotFound(product_id)
        shopper = self.shopper(user_id, session_id)
        query = RankQuery(product_id, user_id, shopper.history, shopper.purchased, k, filters=filters)
        return self._ranker(diversity).rank(query)

    def for_user(self, user_id: str, session_id: str | None = None, k: int = 10,
                 filters: ProductFilter | None = None, diversity: float | None = None) -> list[RankedItem]:
        """Products for a shopper with no anchor page (an unknown shopper gets the popular products)."""
        shopper = self.shopper(user_id, session_id)
        query = RankQuery(None, user_id, shopper.history, shopper.purchased, k, filters=filters)
        return self._ranker(diversity).rank(query)

    def views(self, product_ids: Iterable[str]) -> dict[str, ItemView]:
        """Cached views of products (for rendering the ranked items)."""
        return self.items.get_many(product_ids)

    def co_counts(self, anchor_id: str, product_id: str) -> dict[str, float]:
        """Sessions the two products share, per kind (``view``, ``purchase``); {} without a behaviour model."""
        co = self._loaded.cooccurrence
        if co is None:
            return {}
        return {kind: float(co.count(anchor_id, product_id, kind)) for kind in ("view", "purchase")}

    def shopper(self, user_id: str | None, session_id: str | None) -> Shopper:
        """The shopper's recent products (this session's first) and purchases, from the event log."""
        if not user_id:
            return Shopper()
        events = self._log().user_history(user_id, limit=self.settings.history_items)
        in_session = [e.product_id for e in events if session_id and e.session_id == session_id]
        recent = [e.product_id for e in events]
        history = tuple(dict.fromkeys([*in_session, *recent]))
        return Shopper(history, frozenset(e.product_id for e in events if e.event == "purchase"))

    def reload(self) -> bool:
        """Switch to the published artifact / fusion model when either changed; True when it switched."""
        with self._lock:
            self._checked = time.monotonic()
            version, stamp = self._artifacts.current_version(), _stamp(fusion_model_path(self._data_dir))
            if version == self._loaded.version and stamp == self._loaded.fusion_stamp:
                return False
            self._loaded = self._load(version, stamp)
            self.items.clear()  # cached `behavior` vectors belong to the old version
            return True

    def close(self) -> None:
        """Close this thread's event-log connection (others close with their threads)."""
        log = getattr(self._local, "log", None)
        if log is not None:
            log.close()
            self._local.log = None

    # ----------------------------------------------------------------- internals
    def _ranker(self, diversity: float | None) -> FusionRanker:
        if time.monotonic() - self._checked >= self.settings.reload_interval_s:
            self.reload()
        s, loaded = self.settings, self._loaded
        rules = Rules(exclude_out_of_stock=s.exclude_out_of_stock, exclude_purchased=s.exclude_purchased,
                      max_per_variant_group=s.max_per_variant_group,
                      diversity=s.diversity if diversity is None else diversity)
        return FusionRanker("online", loaded.sources, self.items, loaded.features, loaded.model, rules, s.per_source,
                            self._pool)

    def _load(self, version: str | None, fusion_stamp: float | None) -> _Loaded:
        artifacts = self._artifacts.load(version) if version else None
        popularity = self._popularity(artifacts)
        sources: list[CandidateSource] = [VectorNeighbours(v, self.items, self._near) for v in NEIGHBOUR_VECTORS]
        if artifacts is not None:
            sources += [CoOccurring(artifacts.cooccurrence), SessionCoOccurring(artifacts.cooccurrence),
                        AlsForUser(artifacts.model)]
        sources.append(Popular(popularity))
        sources = [src for src in sources if src.name in self._enabled]
        context = BehaviourContext(artifacts.cooccurrence if artifacts else None,
                                   artifacts.model if artifacts else None, popularity)
        path = fusion_model_path(self._data_dir)
        model = FusionModel.load(path) if fusion_stamp is not None else configured_model(self._weights)
        return _Loaded(version, fusion_stamp, tuple(sources), FeatureBuilder(context), model, context.cooccurrence)

    def _popularity(self, artifacts: Artifacts | None) -> dict[str, float]:
        """Sessions per item from the published co-occurrence; else event counts from the log (cold start)."""
        if artifacts is not None:
            co = artifacts.cooccurrence
            return {co.items.id(i): float(n) for i, n in enumerate(co.sessions_per_item) if n > 0}
        return {pid: float(sum(kinds.values())) for pid, kinds in self._log().popularity().items()}

    def _near(self, vector: np.ndarray, name: str, n: int, filters: ProductFilter | None
              ) -> list[tuple[str, float]]:
        return [(h.product_id, 1.0 - h.distance)
                for h in self._store.near_vector(vector, name, n, filters, properties=[])]

    def _log(self) -> EventLog:
        log: EventLog | None = getattr(self._local, "log", None)
        if log is None:
            log = self._local.log = EventLog.in_data_dir(self._data_dir)
        return log


def _stamp(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return None
