"""``POST /v1/search``: a text and/or image query → ranked products with per-signal scores.

Accepts JSON (``api.models.SearchBody``: ``{"text", "image_base64", "vectors": [...], "filters": {...}, "k",
"weights": {...}}``) or multipart/form-data (``SearchForm``: an ``image`` file plus ``text``, ``vectors`` (repeated or
comma-separated), ``k`` and the flat filter fields ``category``, ``price_min``, ``price_max``, ``in_stock``,
``color``, ``brand``, ``level`` and their ``exclude_`` forms). Both kinds of filters are the one
``api.fields.ProductFilters`` model (the JSON one also takes catalog columns and text words); they apply to the
image path too. Bad input → 4xx naming the field.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from api.fields import FLAT_FILTERS, ProductFilters
from api.models import SearchBody, SearchForm
from api.responses import Error
from api.responses import SearchResult as SearchResultBody
from api.schema import Operation, Reply, operation
from api.state import state
from api.validation import image_base64
from recommender.config import Settings
from recommender.search.searcher import FusionWeights, Searcher, SearchRequest, SearchResult

bp = Blueprint("search", __name__, url_prefix="/v1")


def _max_k(settings: Settings) -> dict[str, int]:
    return {"max_k": settings.search.max_k}


@bp.post("/search")
@operation(Operation("Multimodal search: text and/or image query → products (JSON or multipart)", json=SearchBody,
                     form=SearchForm, filters=FLAT_FILTERS, limits=_max_k, responses={
                         200: Reply("ranked hits", (SearchResultBody,)),
                         413: Reply("image, pixels, text or body too large", (Error,)),
                         422: Reply("not a usable image", (Error,))}))
def search(body: SearchBody | SearchForm, filters: ProductFilters | None) -> Response:
    """Run one search."""
    st = state()
    req = search_request(body, filters, FusionWeights.from_settings(st.settings.search))
    with st.store() as store:
        result = Searcher(store, st.encoders, st.settings.search).search(req)
    return jsonify(result_json(result))


def search_request(body: SearchBody | SearchForm, form_filters: ProductFilters | None,
                   configured: FusionWeights) -> SearchRequest:
    """A SearchRequest from a validated JSON body (image base64, nested filters) or form (image file, flat filters)."""
    if isinstance(body, SearchBody):
        image = image_base64(body.image_base64) if body.image_base64 is not None else None
        filters, weights = body.filters, configured.with_overrides(body.weights) if body.weights else None
    else:
        image, filters, weights = body.image.read() if body.image is not None else None, form_filters, None
    return SearchRequest(text=body.text, image=image, vectors=tuple(body.vectors or ()),
                         filters=(filters or ProductFilters()).search_filters(), k=body.k, weights=weights)


def result_json(result: SearchResult) -> dict[str, Any]:
    """The response body: ranked hits with fused and per-signal scores, plus the weights used."""
    return {
        "results": [{"rank": i, "product_id": h.product_id, "title": h.title, "image": h.image, "price": h.price,
                     "category": h.category, "score": round(h.score, 6),
                     "scores": {k: round(v, 6) for k, v in h.scores.items()}}
                    for i, h in enumerate(result.hits, start=1)],
        "weights": dict(result.weights),
        "candidates": result.candidates,
    }
