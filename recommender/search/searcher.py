"""Multimodal search: a text and/or image query → products, by fusing cosine similarities over named vectors.

Fusion is explicit. Each (query modality, target vector) pair with a non-zero weight is one *signal*, named
``"<query>-><target>"`` (``text->text``, ``text->image``, ``image->image``, ``image->text``). For every signal the
store returns its top-N products by that target vector, with the filters pushed down into Weaviate. The union of
those candidates is then scored on every signal: a candidate missing from one signal's list gets that signal's
cosine computed exactly from its stored vector (one fetch per target vector), so every hit carries every score it
can have and the ranking does not depend on which list happened to reach a product. A product that has no such
vector at all (e.g. its image failed to load) has no score for that signal and the signal adds 0 to its fused
score. ``fused = Σ weight(signal) × score(signal)``; ties break by product id.

A signal's score is its cosine, except ``text->image``: there each image's stored hubness penalty is subtracted
(``image_penalty``, written by vectorize from the trained tower's calibrated correction, see
``alignment/hubness.py``; 0 when there is none). Images that sit close to every title would otherwise crowd the
top of every text search; the candidates are still the top-N by plain cosine, re-ranked by the corrected score.

Cross-modal signals compare a text query with ``image`` vectors (and an image query with ``text`` vectors); they
mean something only once the image tower has been trained into the text encoder's space.

Models load lazily through ``QueryEncoders``: the search path is where they load, nothing else needs them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
from PIL import Image

from recommender.catalog.images import ImageProblem, ImageTooLarge, check_size, decode_image, image_limits, to_rgb
from recommender.config import SearchSettings
from recommender.domain import CATEGORY_SEPARATOR, FieldCondition
from recommender.encoders.base import Encoder
from recommender.errors import RecommenderError
from recommender.store.products import ProductFilter, ProductStore

QUERY_MODALITIES = ("text", "image")
SEARCHABLE_VECTORS = ("text", "image")  # `behavior` lives in another space: no text/image query can reach it
MAX_K = 100


class SearchInputError(RecommenderError):
    """A search request is invalid. ``field`` names the input (``text``, ``image``, ``vectors``, ``k``,
    ``filters.price_min``, …); ``kind`` is ``invalid`` (malformed), ``unprocessable`` (well-formed but unusable,
    e.g. bytes that are not an image) or ``too_large`` (over a size limit)."""

    def __init__(self, field: str, message: str, kind: str = "invalid") -> None:
        super().__init__(message)
        self.field = field
        self.kind = kind


def signal_name(query: str, target: str) -> str:
    """The name of a (query modality, target vector) pair, e.g. ``text->image``."""
    return f"{query}->{target}"


MAX_WEIGHT = 1000  # per signal; fused scores stay far from float overflow
MAX_PRICE = 1e15  # above any real price, and every bound up to it is exact as a float


@dataclass(frozen=True)
class FusionWeights:
    """Weight of each (query modality, target vector) pair in the fused score; 0 switches a pair off."""

    text_to_text: float = 1.0
    text_to_image: float = 0.5
    image_to_image: float = 1.0
    image_to_text: float = 0.5

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            # bounded, not just finite: a huge weight times a cosine overflows the fused score to inf
            if isinstance(value, bool) or not isinstance(value, int | float) or not -MAX_WEIGHT <= value <= MAX_WEIGHT:
                raise SearchInputError("weights", f"weight {f.name} must be a number between {-MAX_WEIGHT} and "
                                                  f"{MAX_WEIGHT}, got {str(value)[:40]}")

    @classmethod
    def from_settings(cls, settings: SearchSettings) -> FusionWeights:
        """The configured weights."""
        return cls(settings.text_to_text, settings.text_to_image, settings.image_to_image, settings.image_to_text)

    def weight(self, query: str, target: str) -> float:
        """The weight of one pair."""
        return float(getattr(self, f"{query}_to_{target}"))

    def with_overrides(self, overrides: Mapping[str, Any]) -> FusionWeights:
        """A copy with some pairs re-weighted; keys are signal names (``text->image``)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        for name, value in overrides.items():
            query, _, target = str(name).partition("->")
            if query not in QUERY_MODALITIES or target not in SEARCHABLE_VECTORS:
                known = ", ".join(signal_name(q, t) for q in QUERY_MODALITIES for t in SEARCHABLE_VECTORS)
                raise SearchInputError("weights", f"unknown weight {name!r} (known: {known})")
            values[f"{query}_to_{target}"] = value
        return FusionWeights(**values)


def _optional_price(value: float | None, name: str) -> None:
    if value is None:
        return
    # compared, not math.isfinite(): a JSON integer of 400 digits does not convert to a float (OverflowError)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= MAX_PRICE:
        raise SearchInputError(f"filters.{name}", f"{name} must be a number from 0 to {MAX_PRICE:.0e}, "
                                                  f"got {str(value)[:40]}")


@dataclass(frozen=True)
class SearchFilters:
    """Conditions every hit must meet, pushed down into the store query.

    ``category`` is a path prefix on whole levels (``"Women > Bottoms"`` matches ``Women > Bottoms > Jeans``;
    ``"Women"`` matches all of Women), compared exactly (case-sensitive), like the catalog writes them.
    Price bounds are inclusive. ``in_stock`` True keeps only in-stock products, False only sold-out ones (as on
    recommendations and in ask), None does not filter.
    ``conditions`` add colour, brand, category-level, catalog-column and text conditions, each possibly negated
    (``domain.FieldCondition``); they apply to every query path, text and image alike.
    """

    category: str | None = None
    price_min: float | None = None
    price_max: float | None = None
    in_stock: bool | None = None
    conditions: tuple[FieldCondition, ...] = ()

    def __post_init__(self) -> None:
        _optional_price(self.price_min, "price_min")
        _optional_price(self.price_max, "price_max")
        if self.price_min is not None and self.price_max is not None and self.price_min > self.price_max:
            raise SearchInputError("filters.price_min",
                                   f"price_min {self.price_min} is above price_max {self.price_max}")
        if self.category is not None and not all(self.category_levels):
            raise SearchInputError("filters.category", f"category {self.category!r} has an empty level")
        if self.in_stock is not None and not isinstance(self.in_stock, bool):
            raise SearchInputError("filters.in_stock", f"in_stock must be true or false, got {self.in_stock!r}")

    @property
    def category_levels(self) -> tuple[str, ...]:
        """The category prefix split into levels (``()`` when no category filter)."""
        if self.category is None:
            return ()
        return tuple(level.strip() for level in self.category.split(CATEGORY_SEPARATOR.strip()))

    def to_store(self) -> ProductFilter:
        """The store-level filter."""
        return ProductFilter(category=self.category_levels, price_min=self.price_min, price_max=self.price_max,
                             in_stock=self.in_stock, conditions=self.conditions)


@dataclass(frozen=True)
class SearchRequest:
    """One query: text and/or an image (PIL image or encoded bytes), the target vectors, filters, k, weights.

    ``vectors`` empty means every searchable vector (``text`` and ``image``) for each query modality given.
    ``weights`` None means the configured ones. Construction validates and raises SearchInputError naming
    the field; a blank text counts as no text.
    """

    text: str | None = None
    image: Image.Image | bytes | None = None
    vectors: tuple[str, ...] = ()
    filters: SearchFilters = field(default_factory=SearchFilters)
    k: int = 10
    weights: FusionWeights | None = None

    def __post_init__(self) -> None:
        if self.text is not None and not isinstance(self.text, str):
            raise SearchInputError("text", f"text must be a string, got {type(self.text).__name__}")
        text = self.text.strip() if self.text else None
        object.__setattr__(self, "text", text or None)
        if self.image is not None and not isinstance(self.image, bytes | Image.Image):
            raise SearchInputError("image", "image must be image bytes or a PIL image")
        if self.image is not None and isinstance(self.image, bytes) and not self.image:
            raise SearchInputError("image", "image is empty (0 bytes)")
        if self.text is None and self.image is None:
            raise SearchInputError("text", "give a text query, an image, or both")
        if isinstance(self.k, bool) or not isinstance(self.k, int) or not 1 <= self.k <= MAX_K:
            raise SearchInputError("k", f"k must be an integer from 1 to {MAX_K}, got {self.k!r}")
        unknown = [v for v in self.vectors if v not in SEARCHABLE_VECTORS]
        if unknown:
            raise SearchInputError("vectors", f"unknown or unsearchable vector(s) {', '.join(map(repr, unknown))}; "
                                              f"searchable: {', '.join(SEARCHABLE_VECTORS)}")
        object.__setattr__(self, "vectors", tuple(dict.fromkeys(self.vectors)))

    @property
    def modalities(self) -> tuple[str, ...]:
        """The query modalities present, in canonical order."""
        given = {"text": self.text is not None, "image": self.image is not None}
        return tuple(m for m in QUERY_MODALITIES if given[m])

    def signals(self, weights: FusionWeights) -> tuple[tuple[str, str], ...]:
        """The (query modality, target vector) pairs to search: requested targets with a non-zero weight."""
        targets = self.vectors or SEARCHABLE_VECTORS
        pairs = tuple((q, t) for q in self.modalities for t in targets if weights.weight(q, t) != 0)
        if not pairs:
            raise SearchInputError("vectors", f"no (query, vector) pair with a non-zero weight for vectors "
                                              f"{', '.join(targets)} and a {' + '.join(self.modalities)} query")
        return pairs


@dataclass(frozen=True)
class SearchHit:
    """One ranked product with its fused score and the score of every signal it has (see the module doc)."""

    product_id: str
    title: str
    image: str
    price: float | None
    category: str
    score: float
    scores: Mapping[str, float]


@dataclass(frozen=True)
class SearchResult:
    """Ranked hits, the signals and weights that produced them, and where the time went."""

    hits: tuple[SearchHit, ...]
    weights: Mapping[str, float]
    candidates: int
    timings: Mapping[str, float] = field(default_factory=dict)


def fuse(scores: Mapping[str, Mapping[str, float]], weights: Mapping[str, float]) -> list[tuple[str, float]]:
    """(product id, fused score) best first: Σ weights[signal] × scores[signal][id] over the signals an id has;
    a signal an id lacks adds nothing. Ties break by product id so the order is deterministic."""
    fused: dict[str, float] = {}
    for signal, by_id in scores.items():
        w = weights[signal]
        for pid, cosine in by_id.items():
            fused[pid] = fused.get(pid, 0.0) + w * cosine
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))


class QueryEncoders:
    """Text and image encoders built on first use (thread-safe): only the search path pays for loading models."""

    def __init__(self, text: Callable[[], Encoder[str]], image: Callable[[], Encoder[Image.Image]]) -> None:
        self._factories: dict[str, Callable[[], Any]] = {"text": text, "image": image}
        self._built: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.cold_loads: list[str] = []  # modalities first built by a request rather than by warm()

    def get(self, modality: str) -> Encoder[Any]:
        """The encoder of one query modality, building it the first time."""
        with self._lock:
            if modality not in self._built:
                self._built[modality] = self._factories[modality]()
                self.cold_loads.append(modality)
            return self._built[modality]

    def warm(self, modality: str, items: Sequence[Any]) -> None:
        """Build one modality's encoder ahead of requests and encode ``items`` once (weights and kernels load)."""
        with self._lock:
            if modality not in self._built:
                self._built[modality] = self._factories[modality]()
            encoder = self._built[modality]
        encoder.encode_batch(items)

    @property
    def loaded(self) -> tuple[str, ...]:
        """Modalities whose encoder has been built so far."""
        return tuple(self._built)


class Searcher:
    """Runs SearchRequests against one ProductStore with the query encoders; see the module doc for fusion."""

    def __init__(self, store: ProductStore, encoders: QueryEncoders, settings: SearchSettings) -> None:
        self._store = store
        self._encoders = encoders
        self._settings = settings

    def search(self, request: SearchRequest) -> SearchResult:
        """The request's top-k products by fused score, each with its per-signal cosines."""
        if request.k > self._settings.max_k:
            raise SearchInputError("k", f"k must be at most {self._settings.max_k}, got {request.k}")
        weights = request.weights or FusionWeights.from_settings(self._settings)
        pairs = request.signals(weights)
        t0 = time.perf_counter()
        queries = {m: self._encode(request, m) for m in dict.fromkeys(q for q, _ in pairs)}
        t1 = time.perf_counter()
        scores, properties = self._candidates(queries, pairs, request)
        self._fill_missing(scores, queries, pairs)
        _correct_hubness(scores, properties)
        t2 = time.perf_counter()
        signal_weights = {signal_name(q, t): weights.weight(q, t) for q, t in pairs}
        ranked = fuse(scores, signal_weights)[: request.k]
        hits = tuple(_hit(pid, score, properties[pid], scores) for pid, score in ranked)
        timings = {"encode_s": t1 - t0, "retrieve_s": t2 - t1, "fuse_s": time.perf_counter() - t2}
        return SearchResult(hits, signal_weights, len(properties), timings)

    def _encode(self, request: SearchRequest, modality: str) -> np.ndarray:
        if modality == "text":
            assert request.text is not None
            if len(request.text) > self._settings.max_text_chars:
                raise SearchInputError("text", f"text is {len(request.text)} characters, over the "
                                               f"{self._settings.max_text_chars}-character limit", "too_large")
            return self._encoders.get("text").encode_batch([request.text])[0]
        return self._encoders.get("image").encode_batch([self._image(request.image)])[0]

    def _image(self, image: Image.Image | bytes | None) -> Image.Image:
        limits = image_limits(self._settings)
        assert image is not None
        try:
            if isinstance(image, Image.Image):  # already decoded by the caller: still bounded before encoding
                check_size(image.width, image.height, limits)
                return to_rgb(image)
            return decode_image(image, limits)
        except ImageTooLarge as exc:
            raise SearchInputError("image", str(exc), "too_large") from exc
        except ImageProblem as exc:
            raise SearchInputError("image", str(exc), "unprocessable") from exc

    def _candidates(self, queries: Mapping[str, np.ndarray], pairs: Sequence[tuple[str, str]],
                    request: SearchRequest) -> tuple[dict[str, dict[str, float]], dict[str, Mapping[str, Any]]]:
        """Top-N per signal from the store (filters pushed down): cosines by signal, properties by product."""
        n = max(request.k, self._settings.candidates)
        store_filter = request.filters.to_store()
        scores: dict[str, dict[str, float]] = {}
        properties: dict[str, Mapping[str, Any]] = {}
        for q, t in pairs:
            hits = self._store.near_vector(queries[q], t, n, filters=store_filter)
            scores[signal_name(q, t)] = {h.product_id: 1.0 - h.distance for h in hits}
            properties.update((h.product_id, h.properties) for h in hits)
        return scores, properties

    def _fill_missing(self, scores: dict[str, dict[str, float]], queries: Mapping[str, np.ndarray],
                      pairs: Sequence[tuple[str, str]]) -> None:
        """Give every candidate the cosine of every signal it lacks, from its stored vector when it has one."""
        candidates = {pid for by_id in scores.values() for pid in by_id}
        for target in dict.fromkeys(t for _, t in pairs):
            signals = [(q, signal_name(q, target)) for q, t in pairs if t == target]
            missing = sorted({pid for _, s in signals for pid in candidates - scores[s].keys()})
            if not missing:
                continue
            stored = self._store.vectors(missing, [target])
            for q, s in signals:
                for pid in missing:
                    vec = stored.get(pid, {}).get(target)
                    if pid not in scores[s] and vec is not None:
                        scores[s][pid] = float(np.dot(queries[q], vec))


def _correct_hubness(scores: dict[str, dict[str, float]], properties: Mapping[str, Mapping[str, Any]]) -> None:
    """Subtract each image's stored hubness penalty from its ``text->image`` cosine (see the module doc)."""
    by_id = scores.get(signal_name("text", "image"), {})
    for pid in by_id:
        by_id[pid] -= float(properties.get(pid, {}).get("image_penalty") or 0.0)


def _hit(pid: str, score: float, props: Mapping[str, Any], scores: Mapping[str, Mapping[str, float]]) -> SearchHit:
    price = props.get("price")
    return SearchHit(
        product_id=pid, title=str(props.get("title") or ""), image=str(props.get("image") or ""),
        price=None if price is None else float(price), category=str(props.get("category") or ""),
        score=score, scores={s: by_id[pid] for s, by_id in scores.items() if pid in by_id},
    )
