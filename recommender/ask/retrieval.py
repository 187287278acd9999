"""Retrieval per intent: a Plan → the products that meet it, with its constraints pushed down as store filters.

- ``find`` / ``availability``: Weaviate hybrid search (BM25 on title and description + the ``text`` vector), plus
  ``image_weight`` × the text query's cosine to the ``image`` vectors (the trained tower, hubness-corrected), each
  list min-max scaled over its own candidates.
- ``similar``: the photo's or the viewed product's own vectors (``image`` and ``text``), filtered; without a stated
  type, the type is the nearly identical catalog picture's, else the one most of the photo's 10 nearest neighbours
  share (shown in the plan with the words "(the photo)").
- ``complement``: the viewed product's related products (co-purchase / co-view / ALS, via the ranking service),
  of other product types than the viewed one, filtered.
- ``details``: the viewed product's own record, and the other colours of its design.

Every result is re-checked against the plan's constraints in Python (``satisfies``), so a card never shows a
product that misses one. When nothing matches, constraints are relaxed (all but the product type first, then all)
and the closest products come back as labelled alternatives.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np

from recommender.ask.model import AskRequest, Card, Constraint, Plan, Retrieved, satisfies
from recommender.config import AskSettings
from recommender.domain import FieldCondition, Product, ProductFilter
from recommender.encoders.base import Encoder
from recommender.store.schema import Hit

RRF_K = 60.0  # reciprocal-rank fusion constant (Cormack et al. 2009)
PHOTO_WORDS = "(the photo)"
NEAR_DUPLICATE = 0.05  # cosine distance under which a photo is taken to show that very product
VIEWED_WORDS = "(the product you are viewing)"


class AskStore(Protocol):
    """What retrieval needs of the product store (a ProductStore or a reconnecting wrapper)."""

    def hybrid(self, query: str, vector: np.ndarray | None, target: str = "text", k: int = 10,
               filters: ProductFilter | None = None, alpha: float = 0.5) -> list[Hit]: ...

    def near_vector(self, vector: np.ndarray, target: str, k: int = 10, filters: ProductFilter | None = None,
                    properties: Sequence[str] | None = None) -> list[Hit]: ...

    def records(self, product_ids: Sequence[str]) -> dict[str, Product]: ...

    def vectors(self, product_ids: Sequence[str], names: Sequence[str] = ...) -> dict[str, dict[str, np.ndarray]]: ...

    def count_matching(self, filters: ProductFilter | None) -> int: ...

    def find(self, filters: ProductFilter, k: int = 100) -> list[Product]: ...


# (product_id, k) → related product ids, best first, with the candidate sources behind each
Related = Callable[[str, int], Sequence[tuple[str, tuple[str, ...]]]]


@dataclass(frozen=True)
class Encoders:
    """The query encoders retrieval may load (text always; image only for photo questions)."""

    text: Callable[[], Encoder[str]]
    image: Callable[[], Encoder[Any]]


def store_filter(constraints: Sequence[Constraint], in_stock_only: bool) -> ProductFilter:
    """The store filter of a set of constraints (price → bounds, stock → in_stock, the rest → conditions)."""
    low = max((c.low for c in constraints if c.op == "range" and c.low is not None), default=None)
    high = min((c.high for c in constraints if c.op == "range" and c.high is not None), default=None)
    conditions = tuple(cond for cond in (c.to_condition() for c in constraints) if cond is not None)
    stock = [c for c in constraints if c.field == "in_stock"]
    in_stock: bool | None = True if in_stock_only else None
    if stock:
        wants_true = ("true" in {v.casefold() for v in stock[-1].values}) != stock[-1].negated
        in_stock = wants_true
    return ProductFilter(price_min=low, price_max=high, in_stock=in_stock, conditions=conditions)


def _exact_in_store(constraints: Sequence[Constraint]) -> bool:
    """True when the store decides these constraints exactly (no phrase to re-check), so counts are exact."""
    return not any(c.field == "text" and any(len(v.split()) > 1 for v in c.values) for c in constraints)


def rrf(lists: Mapping[str, Sequence[str]], weights: Mapping[str, float]) -> list[tuple[str, float]]:
    """Weighted reciprocal-rank fusion of ranked id lists: Σ w / (60 + rank); ties by id."""
    fused: dict[str, float] = {}
    for name, ids in lists.items():
        for rank, pid in enumerate(ids, start=1):
            fused[pid] = fused.get(pid, 0.0) + weights.get(name, 1.0) / (RRF_K + rank)
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))


def fuse_scores(lists: Mapping[str, Mapping[str, float]], weights: Mapping[str, float]) -> list[tuple[str, float]]:
    """Σ weight × score, each list's scores min-max scaled to 0–1 over its own candidates (a product missing from
    a list adds 0 for it); best first, ties by id."""
    fused: dict[str, float] = {}
    for name, scores in lists.items():
        if not scores:
            continue
        low, high = min(scores.values()), max(scores.values())
        span = high - low
        for pid, score in scores.items():
            scaled = (score - low) / span if span > 0 else 1.0
            fused[pid] = fused.get(pid, 0.0) + weights.get(name, 1.0) * scaled
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))


def search_text(plan: Plan, question: str) -> str:
    """The words hybrid search matches: the plan's free words and its positive constraints' words."""
    words = [c.words for c in plan.constraints if not c.negated and c.op != "range" and c.words
             and not c.words.startswith("(")]
    text = " ".join([*words, plan.query_text]).strip()
    return text or question.strip()


def deepest_category(product: Product) -> str | None:
    """The most specific category level of a product (its type), if it has one."""
    return product.category[-1] if product.category else None


class Retriever:
    """Runs a Plan against the store; see the module doc for each intent."""

    def __init__(self, store: AskStore, encoders: Encoders, settings: AskSettings,
                 related: Related | None = None) -> None:
        self._store = store
        self._encoders = encoders
        self._settings = settings
        self._related = related

    def retrieve(self, plan: Plan, request: AskRequest, viewed: Product | None) -> tuple[Plan, Retrieved]:
        """The products for ``plan`` (and the plan as completed by retrieval, e.g. a type read from a photo)."""
        k = request.k
        if plan.intent == "details":
            return plan, self._details(viewed)
        plan, retrieved = self._by_intent(plan, request, viewed, k)
        if retrieved.matches and any(u.absent for u in plan.unmet) and plan.intent != "complement":
            # asked with words no product mentions: nothing here is what was asked, only close to it
            closest = tuple(replace(c, alternative=True) for c in retrieved.matches)
            retrieved = replace(retrieved, matches=(), alternatives=closest, total_matches=0)
        return plan, retrieved

    def _by_intent(self, plan: Plan, request: AskRequest, viewed: Product | None,
                   k: int) -> tuple[Plan, Retrieved]:
        if plan.intent == "complement" and viewed is not None:
            return plan, self._complement(plan, viewed, k)
        if request.image is not None or (plan.intent == "similar" and viewed is not None):
            return self._similar(plan, request, viewed, k)
        if plan.intent == "availability" and viewed is not None and plan.refers_to_viewed:
            return plan, self._same_design_first(plan, request.question, viewed, k)
        return plan, self._find(plan, request.question, k, exclude=())

    def text_encoder(self) -> Encoder[str]:
        """The text encoder queries are embedded with (loaded on first use)."""
        return self._encoders.text()

    # -- find / availability -------------------------------------------------------------------------------
    def _find(self, plan: Plan, question: str, k: int, exclude: Sequence[str]) -> Retrieved:
        text = search_text(plan, question)
        vector = self._encoders.text().encode_batch([text])[0]
        ranked, paths = self._ranked_text(text, vector, plan.constraints, plan.in_stock_only)
        matches = self._cards(ranked, plan.constraints, k, exclude)
        count = None
        stated = [c for c in plan.constraints if not c.words.startswith("(")]
        # a count covers the constraints only: with free words searched too it would overstate what matched
        if matches and stated and not plan.query_text.strip() and _exact_in_store(plan.constraints):
            count = self._store.count_matching(store_filter(plan.constraints, plan.in_stock_only))
        if matches:
            return Retrieved(matches=matches, total_matches=count, served_from=paths)
        alternatives = self._relaxed(plan, text, vector, k, exclude)
        return Retrieved(alternatives=alternatives, total_matches=0, served_from=(*paths, "relaxed"))

    def _ranked_text(self, text: str, vector: np.ndarray, constraints: Sequence[Constraint],
                     in_stock_only: bool) -> tuple[list[tuple[str, float]], tuple[str, ...]]:
        """Hybrid score (0–1) + image_weight × the text→image cosine min-max scaled over its own candidates."""
        f = store_filter(constraints, in_stock_only)
        n = self._settings.candidates
        lists: dict[str, dict[str, float]] = {
            "hybrid": {h.product_id: 1.0 - h.distance
                       for h in self._store.hybrid(text, vector, "text", n, f, self._settings.alpha)}}
        if self._settings.image_weight > 0:
            hits = self._store.near_vector(vector, "image", n, f, properties=["image_penalty"])
            lists["text->image"] = {h.product_id: 1.0 - h.distance - _penalty(h) for h in hits}
        weights = {"hybrid": 1.0, "text->image": self._settings.image_weight}
        return fuse_scores(lists, weights), tuple(name for name, scores in lists.items() if scores)

    def _relaxed(self, plan: Plan, text: str, vector: np.ndarray, k: int, exclude: Sequence[str]) -> tuple[Card, ...]:
        kinds = [c for c in plan.constraints if c.field == "category" and not c.negated]
        for kept in (kinds, []):
            if kept == list(plan.constraints):
                continue
            ranked, _ = self._ranked_text(text, vector, kept, plan.in_stock_only)
            cards = self._cards(ranked, tuple(kept), k, exclude, report=plan.constraints, alternative=True)
            if cards:
                return cards
        return ()

    def _same_design_first(self, plan: Plan, question: str, viewed: Product, k: int) -> Retrieved:
        group = dict(viewed.attributes).get("variant_group")
        if group:
            design = Constraint("attr:variant_group", values=(group,), words=VIEWED_WORDS)
            wanted = (*(c for c in plan.constraints if c.field != "category"), design)
            found = self._store.find(store_filter(wanted, plan.in_stock_only), k=k + 1)
            cards = tuple(Card(p, 1.0, _labels(plan.constraints, p)) for p in found
                          if p.product_id != viewed.product_id and all(satisfies(c, p) for c in plan.constraints))
            if cards:
                return Retrieved(matches=cards[:k], viewed=viewed, total_matches=len(cards),
                                 served_from=("variant_group",))
        result = self._find(plan, question, k, exclude=(viewed.product_id,))
        return replace(result, viewed=viewed)

    # -- similar ---------------------------------------------------------------------------------------------
    def _similar(self, plan: Plan, request: AskRequest, viewed: Product | None,
                 k: int) -> tuple[Plan, Retrieved]:
        exclude: tuple[str, ...] = ()
        if request.image is not None:
            image = self._encoders.image().encode_batch([request.image])[0]
            queries = {"image": image}
            source, words = "photo", PHOTO_WORDS
        else:
            assert viewed is not None
            queries = self._store.vectors([viewed.product_id], ["text", "image"]).get(viewed.product_id, {})
            source, words, exclude = "viewed", VIEWED_WORDS, (viewed.product_id,)
        if not queries:
            return plan, self._find(plan, request.question, k, exclude)
        plan = self._with_type(plan, queries, viewed, words)
        lists = self._nearest_lists(queries, source, plan.constraints, plan.in_stock_only)
        matches = self._cards(rrf(lists, {}), plan.constraints, k, exclude)
        served = tuple(name for name, ids in lists.items() if ids)
        if matches:
            return plan, Retrieved(matches=matches, viewed=viewed, served_from=served)
        nearest = rrf(self._nearest_lists(queries, source, (), plan.in_stock_only), {})
        relaxed = self._cards(nearest, (), k, exclude, report=plan.constraints, alternative=True)
        return plan, Retrieved(alternatives=relaxed, viewed=viewed, total_matches=0, served_from=served)

    def _nearest_lists(self, queries: Mapping[str, np.ndarray], source: str, constraints: Sequence[Constraint],
                       in_stock_only: bool) -> dict[str, list[str]]:
        """Per query vector, the ids of the nearest products the constraints keep (named ``<source>:<vector>``)."""
        f = store_filter(constraints, in_stock_only)
        n = self._settings.candidates
        return {f"{source}:{name}": [h.product_id for h in self._store.near_vector(vec, name, n, f, properties=[])]
                for name, vec in queries.items()}

    def _with_type(self, plan: Plan, queries: Mapping[str, np.ndarray], viewed: Product | None,
                   words: str) -> Plan:
        """Keep the product type of the photo/viewed product unless the shopper named one."""
        if any(c.field == "category" and not c.negated for c in plan.constraints):
            return plan
        kind = deepest_category(viewed) if viewed is not None else self._photo_type(queries)
        if not kind:
            return plan
        return replace(plan, constraints=(*plan.constraints, Constraint("category", values=(kind,), words=words)))

    def _photo_type(self, queries: Mapping[str, np.ndarray]) -> str | None:
        hits = self._store.near_vector(queries["image"], "image", 10, ProductFilter(), properties=["category"])
        if hits and hits[0].distance <= NEAR_DUPLICATE:  # the photo is (nearly) a catalog product's own picture
            hits = hits[:1]
        kinds = Counter(str(h.properties.get("category", "")).split(" > ")[-1] for h in hits)
        kinds.pop("", None)
        if not kinds:
            return None
        kind, votes = kinds.most_common(1)[0]
        return kind if votes * 2 >= len(hits) else None

    # -- complement / details --------------------------------------------------------------------------------
    def _complement(self, plan: Plan, viewed: Product, k: int) -> Retrieved:
        if self._related is None:
            return replace(self._find(plan, viewed.title, k, (viewed.product_id,)), viewed=viewed,
                           degraded=("no behaviour model: matched by words instead",))
        related = list(self._related(viewed.product_id, self._settings.candidates))
        kind = deepest_category(viewed)
        ranked = [(pid, 1.0 / (RRF_K + i)) for i, (pid, _) in enumerate(related, start=1)]
        sources = tuple(sorted({s for _, srcs in related for s in srcs}))
        constraints = plan.constraints
        if kind:
            constraints = (*constraints, Constraint("category", "not_in", (kind,), words=VIEWED_WORDS))
        if plan.in_stock_only:
            constraints = (*constraints, Constraint("in_stock", values=("true",), words="(in stock)"))
        matches = self._cards(ranked, constraints, k, (viewed.product_id,))
        return Retrieved(matches=matches, viewed=viewed, served_from=sources or ("related",))

    def _details(self, viewed: Product | None) -> Retrieved:
        if viewed is None:
            return Retrieved(degraded=("no product is being viewed",))
        group = dict(viewed.attributes).get("variant_group")
        siblings: tuple[Card, ...] = ()
        if group:
            found = self._store.find(ProductFilter(conditions=(FieldCondition("attr:variant_group", (group,)),)), 50)
            siblings = tuple(Card(p) for p in sorted(found, key=lambda p: p.product_id)
                             if p.product_id != viewed.product_id)
        return Retrieved(matches=siblings, viewed=viewed, served_from=("record",))

    # -- cards -----------------------------------------------------------------------------------------------
    def _cards(self, ranked: Sequence[tuple[str, float]], constraints: Sequence[Constraint], k: int,
               exclude: Sequence[str], report: Sequence[Constraint] | None = None,
               alternative: bool = False) -> tuple[Card, ...]:
        """Records of the ranked ids that meet every constraint, best first, at most k."""
        skip = set(exclude)
        ids = [pid for pid, _ in ranked if pid not in skip]
        records = self._store.records(ids[: max(k * 4, self._settings.candidates)])
        cards: list[Card] = []
        score = dict(ranked)
        for pid in ids:
            record = records.get(pid)
            if record is None or not all(satisfies(c, record) for c in constraints):
                continue
            cards.append(Card(record, score[pid], _labels(report if report is not None else constraints, record),
                              alternative))
            if len(cards) == k:
                break
        return tuple(cards)


def _labels(constraints: Sequence[Constraint], product: Product) -> tuple[str, ...]:
    return tuple(c.label() for c in constraints if not c.words.startswith("(") and satisfies(c, product))


def _penalty(hit: Hit) -> float:
    value = hit.properties.get("image_penalty")
    return float(value) if isinstance(value, int | float) else 0.0
