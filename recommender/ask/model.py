"""Frozen dataclasses passed between the ask stages, and the one check of a constraint against a product.

A ``Constraint`` is typed and names the question words it came from. ``satisfies`` is the single definition
of "this product meets this constraint": retrieval verifies store results with it, cards report it, and the
evaluation scores gold constraints with it, so the three can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from recommender.domain import ATTR_PREFIX, FieldCondition, Product

# Where a constraint looks. ``attr:<column>`` is one of the catalog's extra columns (usage, season, …);
# ``text`` is the product's own title + description (used for words no structured field covers).
FIELDS = ("category", "color", "brand", "price", "in_stock", "text")

# What a shopper wants done.
INTENTS = (
    "find",          # "black casual sandals for men" → filtered search
    "availability",  # "do you have …", "does it come in navy?" → yes/no + the products
    "similar",       # "like this (photo or viewed product) but in blue" → that item's vectors + filters
    "complement",    # "what goes with these jeans" → co-purchase / co-view / ALS of the viewed product
    "details",       # "how much is it?", "is it in stock?" → the viewed product's own record
)


@dataclass(frozen=True)
class Constraint:
    """One typed condition a product must meet (``op="in"``: any of ``values``; ``"not_in"``: none of them;
    ``"range"``: ``low ≤ price ≤ high``, either bound optional). ``values`` are canonical catalog spellings
    (as stored), matched case-insensitively; ``words`` are the question's words it was read from."""

    field: str
    op: str = "in"
    values: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    words: str = ""

    def __post_init__(self) -> None:
        if self.field not in FIELDS and not self.field.startswith(ATTR_PREFIX):
            raise ValueError(f"unknown constraint field {self.field!r}")
        if self.op not in ("in", "not_in", "range"):
            raise ValueError(f"unknown constraint op {self.op!r}")
        if (self.op == "range") != (self.field == "price"):
            raise ValueError("price constraints (and only they) use op='range'")
        if self.op == "range" and self.low is None and self.high is None:
            raise ValueError("a price range needs a low or a high bound")
        if self.op != "range" and not self.values:
            raise ValueError(f"a {self.field} constraint needs at least one value")

    @property
    def negated(self) -> bool:
        """True for a must-not constraint ("not leather", "without a hood")."""
        return self.op == "not_in"

    def label(self) -> str:
        """A short human label, e.g. ``color: Black``, ``not brand: Nike``, ``price ≤ 50``."""
        if self.op == "range":
            if self.low is not None and self.high is not None:
                return f"price {self.low:g}–{self.high:g}"
            return f"price ≤ {self.high:g}" if self.high is not None else f"price ≥ {self.low:g}"
        name = self.field.removeprefix(ATTR_PREFIX)
        return f"{'not ' if self.negated else ''}{name}: {' or '.join(self.values)}"

    def to_json(self) -> dict[str, Any]:
        """The JSON form used in API responses and conversation state."""
        out: dict[str, Any] = {"field": self.field, "op": self.op, "words": self.words, "label": self.label()}
        if self.op == "range":
            out.update(low=self.low, high=self.high)
        else:
            out["values"] = list(self.values)
        return out

    def to_condition(self) -> FieldCondition | None:
        """The store-level condition of this constraint (None for price and stock, which are their own filters)."""
        if self.field in ("price", "in_stock"):
            return None
        return FieldCondition(self.field, self.values, negate=self.negated)


def satisfies(constraint: Constraint, product: Product) -> bool:
    """True when ``product`` meets ``constraint`` (a product without a price fails any price bound).

    Attribute constraints defer to ``FieldCondition.matches`` (the store filter's definition): structured
    fields compare whole values case-insensitively, ``text`` looks for whole words in title and description.
    """
    c = constraint
    if c.op == "range":
        if product.price is None:
            return False
        return (c.low is None or product.price >= c.low) and (c.high is None or product.price <= c.high)
    if c.field == "in_stock":
        wanted = {v.strip().casefold() for v in c.values}
        return (("true" if product.in_stock else "false") in wanted) != c.negated
    condition = c.to_condition()
    return condition is not None and condition.matches(product)


def satisfies_all(constraints: tuple[Constraint, ...], product: Product) -> bool:
    """True when ``product`` meets every constraint."""
    return all(satisfies(c, product) for c in constraints)


@dataclass(frozen=True)
class Unmet:
    """Something asked that cannot be checked or matched, said plainly (``words``: the question's words).

    ``absent`` marks words no product in the catalog mentions at all: a product wanted with them cannot exist
    here, so nothing matches and retrieval offers only labelled alternatives."""

    words: str
    reason: str
    absent: bool = False


@dataclass(frozen=True)
class Plan:
    """What the planner understood: the intent, the typed constraints (each with its words), the words left for
    free-text retrieval, whether the question refers to the viewed product/photo, and what it could not use.

    ``asks`` names the facts a ``details`` question wants (``price``, ``in_stock``, ``color``, ``colors``
    (other colours of the same design), ``brand``, ``category``, ``description``, or an attribute column).
    ``in_stock_only`` is True unless the shopper asked to include sold-out products.
    """

    intent: str
    constraints: tuple[Constraint, ...] = ()
    query_text: str = ""
    refers_to_viewed: bool = False
    asks: tuple[str, ...] = ()
    unmet: tuple[Unmet, ...] = ()
    in_stock_only: bool = True
    source: str = "rules"  # rules | llm

    def __post_init__(self) -> None:
        if self.intent not in INTENTS:
            raise ValueError(f"unknown intent {self.intent!r}")


@dataclass(frozen=True)
class Conversation:
    """State a client sends back for a follow-up ("and in white?"): the last plan's constraints, intent, query
    words, viewed product and the products shown. Bounded and re-validated on the way in."""

    intent: str = "find"
    constraints: tuple[Constraint, ...] = ()
    query_text: str = ""
    product_id: str | None = None
    shown: tuple[str, ...] = ()


@dataclass(frozen=True)
class AskRequest:
    """One question: words and/or a photo (decoded, bounded upstream), optionally about a viewed product."""

    question: str
    image: Any = None  # a PIL image, already decoded within limits, or None
    product_id: str | None = None
    conversation: Conversation | None = None
    k: int = 5
    answer_backend: str | None = None  # None = configured; "template" forces the deterministic composer


@dataclass(frozen=True)
class Card:
    """A product as shown with an answer, built from its store record; ``satisfies`` lists the labels of the
    constraints it meets, ``alternative`` marks a closest match shown because nothing met every constraint."""

    product: Product
    score: float = 0.0
    satisfies: tuple[str, ...] = ()
    alternative: bool = False


@dataclass(frozen=True)
class Retrieved:
    """What retrieval found for a plan: matching products (best first), labelled alternatives when nothing
    matched, the viewed product's record (if any), and which engine paths answered."""

    matches: tuple[Card, ...] = ()
    alternatives: tuple[Card, ...] = ()
    viewed: Product | None = None
    total_matches: int | None = None  # how many products match (for counts); None = not counted
    served_from: tuple[str, ...] = ()  # e.g. ("hybrid",), ("near_vector:image",), ("cooccurrence", "als")
    degraded: tuple[str, ...] = ()  # reasons a path fell back


@dataclass(frozen=True)
class Sentence:
    """One sentence of an answer and the product ids it speaks of (every id is one of the shown products)."""

    text: str
    product_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Answer:
    """The answer: its sentences (joined as ``text``) and where it came from (template | llm | cache)."""

    sentences: tuple[Sentence, ...]
    source: str = "template"
    fallback_reason: str = ""

    @property
    def text(self) -> str:
        """The sentences joined with spaces."""
        return " ".join(s.text for s in self.sentences)


@dataclass(frozen=True)
class AskResult:
    """Everything an ask returns; the API and the CLI serialise it."""

    plan: Plan
    retrieved: Retrieved
    answer: Answer
    conversation: Conversation
    timings_ms: dict[str, float] = field(default_factory=dict, hash=False, compare=False)
