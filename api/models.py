"""Request models of every endpoint: path parameters, query strings, JSON bodies and multipart forms.

They check shapes and types with the shared field types of ``api.fields``; rules that need the catalog or the
configured encoders (known vector names, weight names, image decoding, text and question lengths) stay with the
library that applies them and answer in the same error shape.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

from api.fields import Id, Int, K, Number, ProductFilters, Upload, number
from recommender.search.searcher import SEARCHABLE_VECTORS

MAX_CONVERSATION_BYTES = 16 * 1024
MAX_JSON_IMAGE_CHARS = 16 * 1024 * 1024  # the body limit bounds it first; this only keeps the schema finite


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProductPath(_Strict):
    """A product in the path."""

    product_id: Id = Field(description="the product")


class UserPath(_Strict):
    """A shopper in the path."""

    user_id: Id = Field(description="the shopper")


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


Explain = Annotated[Literal["none", "template", "llm"], BeforeValidator(_lower)]


class UserRecommendationsQuery(_Strict):
    """Query parameters of a shopper's recommendations (the filters are ``api.fields.ProductFilters``)."""

    k: K = Field(default=10, description="number of items")
    session_id: Id | None = Field(default=None, description="the shopper's session (its products count as the most "
                                                            "recent history)")
    diversity: Annotated[float, Field(ge=0, le=1), BeforeValidator(number)] | None = Field(
        default=None, description="MMR λ: 0 = relevance only … 1 = novelty (default: configured)")
    explain: Explain = Field(default="template", description="explanation mode (llm falls back to the template while "
                                                             "no LLM is configured)")


class ProductRecommendationsQuery(UserRecommendationsQuery):
    """Query parameters of a product page's recommendations."""

    user_id: Id | None = Field(default=None, description="the shopper (personalises; optional)")


RECOMMENDATION_FILTERS = ("category", "price_min", "price_max", "in_stock")


def _vector_list(value: Any) -> Any:
    """Form fields may repeat ``vectors`` or comma-separate them; JSON sends a list."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [part.strip() for v in value for part in v.split(",") if part.strip()]
    return value


_VECTORS_SCHEMA = {"type": "array", "items": {"type": "string", "enum": list(SEARCHABLE_VECTORS)}, "maxItems": 10,
                   "description": "restrict to these named vectors (default: both)"}
Vectors = Annotated[list[str], BeforeValidator(_vector_list), Field(max_length=10), WithJsonSchema(_VECTORS_SCHEMA)]


class SearchBody(_Strict):
    """A JSON search: at least one of ``text`` and ``image_base64``."""

    text: str | None = Field(default=None, description="the query words (at most search.max_text_chars)")
    image_base64: str | None = Field(default=None, max_length=MAX_JSON_IMAGE_CHARS,
                                     description="a query image, base64 or a data: URL")
    vectors: Vectors | None = None
    filters: ProductFilters | None = None
    k: K = Field(default=10, description="number of hits")
    weights: dict[str, Number] | None = Field(
        default=None, max_length=10, description='per (query, target) weight, e.g. {"text->image": 0.5}')


class SearchForm(_Strict):
    """A multipart search: an ``image`` file and/or ``text``, plus the flat filter fields."""

    text: str | None = Field(default=None, description="the query words")
    image: Upload | None = Field(default=None, description="the query image")
    vectors: Vectors | None = None
    k: K = Field(default=10, description="number of hits")


Answer = Literal["template", "configured"]


class AskBody(_Strict):
    """A JSON question: words and/or ``image_base64``, optionally about the viewed ``product_id``."""

    question: str = Field(default="", description="the question (at most ask.max_question_chars)")
    product_id: Id | None = Field(default=None, description="the product on screen")
    image_base64: str | None = Field(default=None, max_length=MAX_JSON_IMAGE_CHARS, description="a photo, base64")
    k: K | None = Field(default=None, description="products shown (default: ask.k)")
    conversation: dict[str, Any] | None = Field(default=None,
                                                description="the conversation object of the previous answer")
    answer: Answer | None = Field(default=None, description="template forces the deterministic composer")


def _conversation_size(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_CONVERSATION_BYTES:
        raise PydanticCustomError("too_large", f"is over the {MAX_CONVERSATION_BYTES}-character limit")
    return value


class AskForm(_Strict):
    """A multipart question: an ``image`` file and the same fields as form values."""

    question: str = Field(default="", description="the question")
    image: Upload | None = Field(default=None, description="a photo")
    product_id: Id | None = Field(default=None, description="the product on screen")
    k: K | None = Field(default=None, description="products shown (default: ask.k)")
    conversation: Annotated[str, BeforeValidator(_conversation_size)] | None = Field(
        default=None, description="the JSON conversation of the last answer")
    answer: Answer | None = Field(default=None, description="template forces the deterministic composer")


class EventIn(BaseModel):
    """One shopper event (validated one at a time by the event log's rules; bad ones are rejected, not fatal)."""

    user_id: Id
    product_id: Id
    event: Literal["view", "cart", "purchase", "click"]
    timestamp: str | None = Field(default=None, description="ISO 8601 date-time; default: server time",
                                  json_schema_extra={"format": "date-time"})
    session_id: Id | None = None
    event_id: Annotated[str, Field(max_length=256)] | None = Field(
        default=None, description="the client's id of the event: a retry with the same (user_id, event_id) is "
                                  "stored once, even without a timestamp")


class EventBatch(BaseModel):
    """``{"events": [...]}``: each item is checked on its own, so one bad event never loses the good ones."""

    model_config = ConfigDict(frozen=True)

    events: Annotated[list[Any], WithJsonSchema({"type": "array",
                                                 "items": {"$ref": "#/components/schemas/EventIn"}})]


class TokenBody(_Strict):
    """``POST /v1/tokens``: the shopper a token is issued for."""

    user_id: Id = Field(description="the shopper the token may write for")
    session_id: Id | None = Field(default=None, description="limit the token to this session")
    ttl_s: Int | None = Field(default=None, ge=1, description="lifetime in seconds (default auth.token_ttl_s, at most "
                                                              "auth.max_token_ttl_s)")


__all__ = ["AskBody", "AskForm", "EventBatch", "EventIn", "ProductPath", "ProductRecommendationsQuery",
           "SearchBody", "SearchForm", "TokenBody", "UserPath", "UserRecommendationsQuery"]
