"""``GET /v1/products/<id>/recommendations`` and ``GET /v1/users/<id>/recommendations``.

Query parameters: ``k``, ``user_id`` (product page only), ``session_id``, ``category`` (a ``A > B`` path prefix),
``price_min``, ``price_max``, ``in_stock``, ``diversity`` (0..1, MMR λ), ``explain`` (none|template|llm).
Each item: ``product_id, title, image_url, price, score, signals`` (per-signal values and contributions),
``sources`` (candidate sources that proposed it) and ``explanation`` (``{"text", "source"}`` or null).
The body also says what served it: ``release``, ``model_version``, ``fusion``, ``served_from`` (``live`` |
``precomputed`` | ``fallback``) and ``degraded`` (true for the fallback: Weaviate unreachable, stock may be stale).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request
from werkzeug.datastructures import MultiDict

from api.errors import ApiError
from api.explanation import MODES, explain_items
from api.state import state
from api.urls import product_image_url
from api.validation import clean_id, optional_id, parse_int
from recommender.domain import CATEGORY_SEPARATOR, ItemView, ProductFilter
from recommender.ranking.service import Recommendations

bp = Blueprint("recommendations", __name__, url_prefix="/v1")

_PARAMS = {"k", "user_id", "session_id", "category", "price_min", "price_max", "in_stock", "diversity", "explain"}


@bp.get("/products/<product_id>/recommendations")
def for_product(product_id: str) -> Response:
    """Recommendations for a product page."""
    args = request.args
    _check_known(args, _PARAMS)
    product_id = clean_id(product_id, "product_id")
    user_id, session_id = optional_id(args.get("user_id"), "user_id"), optional_id(args.get("session_id"), "session_id")
    k, filters, diversity, explain = _k(args), filters_from(args), _diversity(args), _explain(args)
    recs = state().recommendations().for_product(product_id, user_id, session_id, k, filters, diversity)
    return jsonify(_body(product_id, user_id, session_id, recs, explain))


@bp.get("/users/<user_id>/recommendations")
def for_user(user_id: str) -> Response:
    """Recommendations for a shopper (no anchor product)."""
    args = request.args
    _check_known(args, _PARAMS - {"user_id"})
    user_id = clean_id(user_id, "user_id")
    session_id = optional_id(args.get("session_id"), "session_id")
    k, filters, diversity, explain = _k(args), filters_from(args), _diversity(args), _explain(args)
    recs = state().recommendations().for_user(user_id, session_id, k, filters, diversity)
    return jsonify(_body(None, user_id, session_id, recs, explain))


def _body(anchor_id: str | None, user_id: str | None, session_id: str | None, recs: Recommendations,
          explain: str) -> dict[str, Any]:
    st = state()
    service = st.recommendations()
    ranked = recs.items
    history = service.shopper(user_id, session_id).history[:5] if explain != "none" and user_id else ()
    views = service.views([*([anchor_id] if anchor_id else []), *(r.product_id for r in ranked), *history])
    anchor = views.get(anchor_id) if anchor_id else None
    explanations = explain_items(explain, st.explanations(), ranked, views, anchor,
                                 [views[h] for h in history if h in views], service.co_counts)
    items = []
    for r, explanation in zip(ranked, explanations, strict=True):
        view = views.get(r.product_id)
        items.append({
            "product_id": r.product_id, "title": view.title if view else "", "image_url": image_url(view),
            "price": view.price if view else None, "score": round(r.score, 6), "signals": r.signals,
            "sources": list(r.sources), "explanation": explanation,
        })
    return {"product_id": anchor_id, "items": items, "model_version": service.version, "release": service.release,
            "fusion": service.fusion_kind if anchor_id else service.shopper_fusion_kind,
            "served_from": recs.served_from, "degraded": recs.degraded}


def image_url(view: ItemView | None) -> str | None:
    """The URL of the product image: its own http(s) URL, else the API's image endpoint (see ``api.urls``)."""
    return product_image_url(view.product_id, view.image) if view is not None else None


def _check_known(args: MultiDict[str, str], known: set[str]) -> None:
    unknown = sorted(set(args) - known)
    if unknown:
        raise ApiError(400, "invalid_request", f"unknown parameter {unknown[0]!r}", unknown[0])


def _k(args: MultiDict[str, str]) -> int:
    limit = state().settings.ranking.max_k
    k = parse_int(args.get("k"), "k", 10)
    if not 1 <= k <= limit:
        raise ApiError(400, "invalid_request", f"k must be between 1 and {limit}, got {k}", "k")
    return k


def _float(args: MultiDict[str, str], name: str) -> float | None:
    raw = (args.get(name) or "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError as exc:
        raise ApiError(400, "invalid_request", f"{name} must be a number, got {raw[:40]!r}", name) from exc
    if value != value or value in (float("inf"), float("-inf")):
        raise ApiError(400, "invalid_request", f"{name} must be a finite number", name)
    return value


def _diversity(args: MultiDict[str, str]) -> float | None:
    value = _float(args, "diversity")
    if value is not None and not 0.0 <= value <= 1.0:
        raise ApiError(400, "invalid_request", f"diversity must be between 0 and 1, got {value}", "diversity")
    return value


def _explain(args: MultiDict[str, str]) -> str:
    mode = (args.get("explain") or "template").strip().lower()
    if mode not in MODES:
        raise ApiError(400, "invalid_request", f"explain must be one of {', '.join(MODES)}, got {mode[:20]!r}",
                       "explain")
    return mode


def filters_from(args: MultiDict[str, str]) -> ProductFilter | None:
    """The request's product filter (None when it keeps everything)."""
    category = tuple(c.strip() for c in (args.get("category") or "").split(CATEGORY_SEPARATOR.strip()) if c.strip())
    price_min, price_max = _float(args, "price_min"), _float(args, "price_max")
    if price_min is not None and price_max is not None and price_min > price_max:
        raise ApiError(400, "invalid_request", "price_min is greater than price_max", "price_min")
    raw = (args.get("in_stock") or "").strip().lower()
    if raw not in {"", "1", "true", "yes", "0", "false", "no"}:
        raise ApiError(400, "invalid_request", f"in_stock must be true or false, got {raw[:20]!r}", "in_stock")
    in_stock = None if raw == "" else raw in {"1", "true", "yes"}
    f = ProductFilter(category, price_min, price_max, in_stock)
    return None if f.is_empty else f
