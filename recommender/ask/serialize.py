"""AskResult → JSON (the API and the CLI print the same shape) and client conversation state → Conversation.

Conversation state comes back from the client, so it is untrusted: bounded in size and re-validated field by field
(an invalid one raises ``ValueError`` naming the part).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from recommender.ask.model import INTENTS, AskResult, Card, Constraint, Conversation

MAX_CONVERSATION_CONSTRAINTS = 20
MAX_CONVERSATION_SHOWN = 50
MAX_VALUE_CHARS = 200
MAX_ID_CHARS = 200
CONSTRAINT_KEYS = frozenset({"field", "op", "values", "low", "high", "words", "label"})  # label: derived, ignored

ImageUrl = Callable[[str, str | None], str | None]  # (product_id, catalog image ref) → URL for the card


def card_json(card: Card, image_url: ImageUrl) -> dict[str, Any]:
    """One product card, built from its store record."""
    p = card.product
    return {"product_id": p.product_id, "title": p.title, "image_url": image_url(p.product_id, p.image),
            "price": p.price, "in_stock": p.in_stock, "color": p.color or None, "brand": p.brand or None,
            "category": p.category_path or None, "satisfies": list(card.satisfies),
            "alternative": card.alternative, "score": round(card.score, 6)}


def result_json(result: AskResult, image_url: ImageUrl) -> dict[str, Any]:
    """The response body of one ask."""
    plan, retrieved, answer = result.plan, result.retrieved, result.answer
    return {
        "products": [card_json(c, image_url) for c in retrieved.matches],
        "alternatives": [card_json(c, image_url) for c in retrieved.alternatives],
        "viewed": card_json(Card(retrieved.viewed), image_url) if retrieved.viewed is not None else None,
        "answer": {"text": answer.text, "source": answer.source,
                   "sentences": [{"text": s.text, "product_ids": list(s.product_ids)} for s in answer.sentences],
                   **({"fallback_reason": answer.fallback_reason} if answer.fallback_reason else {})},
        "plan": {"intent": plan.intent, "constraints": [c.to_json() for c in plan.constraints],
                 "query_text": plan.query_text, "refers_to_viewed": plan.refers_to_viewed, "asks": list(plan.asks),
                 "in_stock_only": plan.in_stock_only, "source": plan.source},
        "unmet": [{"words": u.words, "reason": u.reason, "absent": u.absent} for u in plan.unmet],
        "total_matches": retrieved.total_matches,
        "conversation": conversation_json(result.conversation),
        "served_from": list(retrieved.served_from),
        "degraded": list(retrieved.degraded),
        "timings_ms": dict(result.timings_ms),
    }


def conversation_json(conversation: Conversation) -> dict[str, Any]:
    """The state a client sends back with a follow-up question."""
    return {"intent": conversation.intent, "constraints": [constraint_json(c) for c in conversation.constraints],
            "query_text": conversation.query_text, "product_id": conversation.product_id,
            "shown": list(conversation.shown)}


def constraint_json(c: Constraint) -> dict[str, Any]:
    """A constraint's JSON form without its derived label (what clients send back and question files store)."""
    out = c.to_json()
    out.pop("label", None)
    return out


def conversation_from_json(raw: Any) -> Conversation:
    """A Conversation from client JSON; raises ValueError naming what is wrong."""
    if not isinstance(raw, Mapping):
        raise ValueError("conversation must be an object")
    intent = raw.get("intent", "find")
    if intent not in INTENTS:
        raise ValueError(f"conversation.intent must be one of {', '.join(INTENTS)}")
    items = raw.get("constraints", [])
    if not isinstance(items, list) or len(items) > MAX_CONVERSATION_CONSTRAINTS:
        raise ValueError(f"conversation.constraints must be a list of at most {MAX_CONVERSATION_CONSTRAINTS}")
    constraints = tuple(constraint_from_json(c, f"conversation.constraints[{i}]") for i, c in enumerate(items))
    shown = raw.get("shown", [])
    if not isinstance(shown, list) or len(shown) > MAX_CONVERSATION_SHOWN or not all(
            isinstance(s, str) and 0 < len(s) <= MAX_ID_CHARS for s in shown):
        raise ValueError(f"conversation.shown must be a list of at most {MAX_CONVERSATION_SHOWN} product ids")
    return Conversation(intent, constraints, _text(raw.get("query_text", ""), "conversation.query_text"),
                        _optional_id(raw.get("product_id")), tuple(shown))


def constraint_from_json(raw: Any, where: str) -> Constraint:
    """One Constraint from JSON, every part checked."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where} must be an object")
    unknown = sorted(set(raw) - CONSTRAINT_KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r}")
    field, op = raw.get("field"), raw.get("op", "in")
    if not isinstance(field, str) or not isinstance(op, str):
        raise ValueError(f"{where}: field and op must be strings")
    words = _text(raw.get("words", ""), f"{where}.words")
    try:
        if op == "range":
            return Constraint(field, op, low=_number(raw.get("low"), where), high=_number(raw.get("high"), where),
                              words=words)
        values = raw.get("values")
        if not isinstance(values, list) or not 0 < len(values) <= 10:
            raise ValueError("values must be a list of 1 to 10 strings")
        return Constraint(field, op, tuple(_text(v, f"{where}.values") for v in values), words=words)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from exc


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_VALUE_CHARS:
        raise ValueError(f"{where} must be a string of at most {MAX_VALUE_CHARS} characters")
    return value


def _number(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1e12:
        raise ValueError(f"{where}: low/high must be non-negative numbers")
    return float(value)


def _optional_id(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= MAX_ID_CHARS:
        raise ValueError("conversation.product_id must be a product id")
    return value
