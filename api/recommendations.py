"""``GET /v1/products/<id>/recommendations`` and ``GET /v1/users/<id>/recommendations``.

Query parameters: ``k``, ``user_id`` (product page only), ``session_id``, ``category`` (a ``A > B`` path prefix),
``price_min``, ``price_max``, ``in_stock``, ``diversity`` (0..1, MMR λ), ``explain`` (none|template|llm).
Each item: ``product_id, title, image_url, price, score, signals`` (per-signal values and contributions),
``sources`` (candidate sources that proposed it) and ``explanation`` (``{"text", "source"}`` or null).
The body also says what served it: ``release``, ``model_version``, ``fusion``, ``served_from`` (``live`` | ``pool``
| ``precomputed`` | ``fallback``) and ``degraded`` (true for the fallback: Weaviate unreachable, stock may be stale).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from api.explanation import explain_items
from api.fields import ProductFilters
from api.models import (
    RECOMMENDATION_FILTERS,
    ProductPath,
    ProductRecommendationsQuery,
    UserPath,
    UserRecommendationsQuery,
)
from api.responses import Error, Recommendations
from api.schema import Operation, Reply, operation
from api.state import state
from api.urls import ProductImageUrls
from recommender.config import Settings
from recommender.domain import RECENT_HISTORY, ItemView
from recommender.ranking import service as ranking

bp = Blueprint("recommendations", __name__, url_prefix="/v1")

_STATUSES = {200: Reply("ranked items", (Recommendations,))}


def _max_k(settings: Settings) -> dict[str, int]:
    return {"max_k": settings.ranking.max_k}


@bp.get("/products/<product_id>/recommendations")
@operation(Operation("More like this / you may also like, for a product page", path=ProductPath,
                     query=ProductRecommendationsQuery, filters=RECOMMENDATION_FILTERS, limits=_max_k,
                     responses={**_STATUSES, 404: Reply("unknown product", (Error,))}))
def for_product(product_id: str, query: ProductRecommendationsQuery, filters: ProductFilters) -> Response:
    """Recommendations for a product page."""
    recs = state().recommendations().for_product(product_id, query.user_id, query.session_id, query.k,
                                                 filters.product_filter(), query.diversity)
    return jsonify(_body(product_id, recs, query.explain))


@bp.get("/users/<user_id>/recommendations")
@operation(Operation("Recommendations for a shopper (an unknown shopper gets popular products)", path=UserPath,
                     query=UserRecommendationsQuery, filters=RECOMMENDATION_FILTERS, limits=_max_k,
                     responses=_STATUSES))
def for_user(user_id: str, query: UserRecommendationsQuery, filters: ProductFilters) -> Response:
    """Recommendations for a shopper (no anchor product)."""
    recs = state().recommendations().for_user(user_id, query.session_id, query.k, filters.product_filter(),
                                              query.diversity)
    return jsonify(_body(None, recs, query.explain))


def _body(anchor_id: str | None, recs: ranking.Recommendations, explain: str) -> dict[str, Any]:
    st = state()
    service = st.recommendations()
    ranked = recs.items
    history = recs.history[:RECENT_HISTORY] if explain != "none" else ()  # the shopper's, as read once for the ranking
    views = service.views([*([anchor_id] if anchor_id else []), *(r.product_id for r in ranked), *history])
    anchor = views.get(anchor_id) if anchor_id else None
    explanations = explain_items(explain, st.explanations(), ranked, views, anchor,
                                 [views[h] for h in history if h in views], service.co_counts)
    urls = ProductImageUrls()
    items = []
    for r, explanation in zip(ranked, explanations, strict=True):
        view = views.get(r.product_id)
        items.append({
            "product_id": r.product_id, "title": view.title if view else "",
            "image_url": image_url(view, urls),
            "price": view.price if view else None, "score": round(r.score, 6), "signals": r.signals,
            "sources": list(r.sources), "explanation": explanation,
        })
    return {"product_id": anchor_id, "items": items, "model_version": service.version, "release": service.release,
            "fusion": service.fusion_kind if anchor_id else service.shopper_fusion_kind,
            "served_from": recs.served_from, "degraded": recs.degraded}


def image_url(view: ItemView | None, urls: ProductImageUrls | None = None) -> str | None:
    """The URL of the product image: its own http(s) URL, else the API's image endpoint (see ``api.urls``); a page
    passes its ``urls`` so the endpoint's URL is built once per request."""
    return (urls or ProductImageUrls())(view.product_id, view.image) if view is not None else None
