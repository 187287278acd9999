"""Response models: the documented shape of every JSON body the API answers (``/openapi.json`` components).

The views build their bodies as plain dicts (the hot path stays cheap); the OpenAPI fuzz test checks real responses
against these models, so a drift between them fails a test.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    """What went wrong and which request field it concerns."""

    code: str
    message: str
    field: str | None = Field(description="the request field (``filters.price_min``, ``events[0].user_id``) or null")


class Error(BaseModel):
    """The one error shape of every failure."""

    error: ErrorDetail


class Explanation(BaseModel):
    """Why an item is recommended."""

    text: str
    source: str


class Item(BaseModel):
    """One recommended product with its fused score and evidence."""

    product_id: str
    title: str
    image_url: str | None
    price: float | None
    score: float
    signals: dict[str, float] = Field(description="per-signal value and <signal>_contribution to the score")
    sources: list[str] = Field(description="the candidate sources that proposed it")
    explanation: Explanation | None


class Recommendations(BaseModel):
    """A ranked list and what served it."""

    product_id: str | None
    items: list[Item]
    model_version: str | None
    release: str | None = Field(description="the published refresh release served")
    fusion: Literal["configured", "learned", "ltr"]
    served_from: Literal["live", "pool", "precomputed", "fallback"]
    degraded: bool = Field(description="true when served from the precomputed fallback because the vector store is "
                                       "unreachable (stock may be stale)")


class Product(BaseModel):
    """A product's public properties."""

    product_id: str
    title: str | None
    description: str | None
    category: str | None
    color: str | None
    brand: str | None
    price: float | None
    in_stock: bool | None
    variant_group: str | None
    attributes: dict[str, Any]
    image_url: str | None


class SearchHit(BaseModel):
    """One search hit with its fused and per-signal scores."""

    rank: int
    product_id: str
    title: str
    image: str | None
    price: float | None
    category: str
    score: float
    scores: dict[str, float] = Field(description='per signal (e.g. "text->image"): the cosine; for text->image minus '
                                                 "the image's hubness penalty")


class SearchResult(BaseModel):
    """Ranked hits, the weights used and how many candidates were scored."""

    results: list[SearchHit]
    weights: dict[str, float]
    candidates: int


class Card(BaseModel):
    """A product card of an answer."""

    product_id: str
    title: str
    image_url: str | None
    price: float | None
    in_stock: bool
    color: str | None
    brand: str | None
    category: str | None
    satisfies: list[str] = Field(description="labels of the constraints it meets")
    alternative: bool = Field(description="a closest match shown because nothing met every constraint")
    score: float


class Sentence(BaseModel):
    """One sentence of an answer and the products it cites."""

    text: str
    product_ids: list[str]


class Answer(BaseModel):
    """The answer's words."""

    text: str
    source: str
    sentences: list[Sentence]
    fallback_reason: str | None = None


class Constraint(BaseModel):
    """A constraint read from the question."""

    field: str = Field(description="category, color, brand, price, in_stock, text or attr:<column>")
    op: Literal["in", "not_in", "range"]
    values: list[str] | None = None
    low: float | None = None
    high: float | None = None
    words: str | None = Field(default=None, description="the question's words it was read from")
    label: str | None = None


class Plan(BaseModel):
    """How the question was understood."""

    intent: Literal["find", "availability", "similar", "complement", "details"]
    constraints: list[Constraint]
    query_text: str
    refers_to_viewed: bool
    asks: list[str]
    in_stock_only: bool
    source: str


class Unmet(BaseModel):
    """Words of the question nothing in the catalog could satisfy."""

    words: str
    reason: str
    absent: bool | None = None


class AskResult(BaseModel):
    """A grounded answer, its products and its plan."""

    products: list[Card]
    alternatives: list[Card]
    viewed: Card | None
    answer: Answer
    plan: Plan
    unmet: list[Unmet]
    total_matches: int | None
    conversation: dict[str, Any] = Field(description="send it back with a follow-up question")
    served_from: list[str]
    degraded: list[str]
    timings_ms: dict[str, float]


class Rejection(BaseModel):
    """One rejected event."""

    index: int
    field: str
    reason: str


class EventResult(BaseModel):
    """What happened to a batch of events (with ``error`` when none was valid)."""

    received: int
    accepted: int
    inserted: int
    duplicates: int
    rejected: list[Rejection]
    error: ErrorDetail | None = None


class TokenResult(BaseModel):
    """A shopper token and what it grants."""

    token: str
    user_id: str
    session_id: str | None
    trust: Literal["shopper"]
    expires_at: str = Field(description="ISO 8601, UTC")


class Health(BaseModel):
    """Liveness."""

    status: Literal["ok"]


class Ready(BaseModel):
    """Readiness: this worker's warm-up and what it loaded (``error`` while it is not ready)."""

    status: str | None = None
    pid: int | None = None
    encoders: list[str] | None = None
    cold_loads: list[str] | None = None
    warmup: dict[str, Any] | None = None
    error: ErrorDetail | None = None


RESPONSE_MODELS: tuple[type[BaseModel], ...] = (Error, Recommendations, Product, SearchResult, AskResult,
                                                EventResult, TokenResult, Health, Ready)
