"""``POST /v1/search``: a text and/or image query → ranked products with per-signal scores.

Accepts JSON ``{"text", "image_base64", "vectors": [...], "filters": {...}, "k", "weights": {...}}`` or
multipart/form-data (an ``image`` file plus form fields ``text``, ``vectors`` (repeated or comma-separated),
``k``, ``category``, ``price_min``, ``price_max``, ``in_stock``, ``color``, ``brand``, ``level`` and their
``exclude_`` forms). Filters also take colour, brand, any category level, catalog columns and text words, and
the same under ``exclude`` (must-not); they apply to the image path too. Bad input → 4xx naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, jsonify, request
from werkzeug.datastructures import MultiDict

from api.errors import ApiError
from api.state import state
from api.validation import image_base64, parse_int
from recommender.config import SearchSettings
from recommender.domain import FieldCondition
from recommender.search.searcher import (
    FusionWeights,
    Searcher,
    SearchFilters,
    SearchInputError,
    SearchRequest,
    SearchResult,
)

bp = Blueprint("search", __name__, url_prefix="/v1")

_JSON_KEYS = {"text", "image_base64", "vectors", "filters", "k", "weights"}
_FILTER_KEYS = {"category", "price_min", "price_max", "in_stock", "color", "brand", "level", "attributes", "text",
                "exclude"}
_CONDITION_KEYS = ("color", "brand", "level", "attributes", "text")  # "level": any level of the category path
MAX_CONDITION_VALUES = 20


@bp.post("/search")
def search() -> Response:
    """Run one search."""
    st = state()
    req = _parse_request(st.settings.search)
    with st.store() as store:
        result = Searcher(store, st.encoders, st.settings.search).search(req)
    return jsonify(result_json(result))


def _parse_request(settings: SearchSettings) -> SearchRequest:
    mimetype = request.mimetype
    if mimetype == "application/json":
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise ApiError(400, "invalid_json", "the body is not a JSON object", "body")
        return request_from_json(body, FusionWeights.from_settings(settings))
    if mimetype == "multipart/form-data":
        return request_from_form(request.form, request.files.get("image"))
    raise ApiError(415, "unsupported_media_type", "send application/json or multipart/form-data", "body")


def request_from_json(body: Mapping[str, Any], configured: FusionWeights) -> SearchRequest:
    """A SearchRequest from a JSON body (the image arrives base64-encoded)."""
    unknown = sorted(set(body) - _JSON_KEYS)
    if unknown:
        raise SearchInputError(unknown[0], f"unknown field {unknown[0]!r}")
    filters = body.get("filters") or {}
    if not isinstance(filters, dict):
        raise SearchInputError("filters", "filters must be an object")
    bad = sorted(set(filters) - _FILTER_KEYS)
    if bad:
        raise SearchInputError(f"filters.{bad[0]}", f"unknown filter {bad[0]!r}")
    vectors = body.get("vectors") or []
    if not isinstance(vectors, list) or not all(isinstance(v, str) for v in vectors):
        raise SearchInputError("vectors", "vectors must be a list of vector names")
    weights = body.get("weights")
    if weights is not None and not isinstance(weights, dict):
        raise SearchInputError("weights", "weights must be an object of signal name → number")
    image = body.get("image_base64")
    return SearchRequest(
        text=body.get("text"), image=image_base64(image) if image is not None else None, vectors=tuple(vectors),
        filters=SearchFilters(category=_opt_str(filters.get("category"), "filters.category"),
                              price_min=filters.get("price_min"), price_max=filters.get("price_max"),
                              in_stock=filters.get("in_stock", False), conditions=conditions_from_json(filters)),
        k=body.get("k", 10), weights=configured.with_overrides(weights) if weights else None)


def conditions_from_json(filters: Mapping[str, Any]) -> tuple[FieldCondition, ...]:
    """Attribute conditions of a JSON filter object: ``color``, ``brand``, ``level``, ``text`` (a string or a list
    of strings: any of them) and ``attributes`` (column → string or list), and the same keys under ``exclude``
    (none of them)."""
    exclude = filters.get("exclude") or {}
    if not isinstance(exclude, dict):
        raise SearchInputError("filters.exclude", "exclude must be an object")
    bad = sorted(set(exclude) - set(_CONDITION_KEYS))
    if bad:
        raise SearchInputError(f"filters.exclude.{bad[0]}", f"unknown filter {bad[0]!r}")
    return (*_conditions(filters, "filters", False), *_conditions(exclude, "filters.exclude", True))


def _conditions(raw: Mapping[str, Any], where: str, negate: bool) -> list[FieldCondition]:
    out: list[FieldCondition] = []
    for key in ("color", "brand", "level", "text"):
        if raw.get(key) is not None:
            field = "category" if key == "level" else key
            out.append(FieldCondition(field, _values(raw[key], f"{where}.{key}"), negate))
    attributes = raw.get("attributes")
    if attributes is not None:
        if not isinstance(attributes, dict) or len(attributes) > MAX_CONDITION_VALUES:
            raise SearchInputError(f"{where}.attributes", "attributes must be an object of column → value(s)")
        for column, values in attributes.items():
            if not isinstance(column, str) or not column.strip() or len(column) > 100:
                raise SearchInputError(f"{where}.attributes", "attribute names must be non-empty strings")
            out.append(FieldCondition(f"attr:{column}", _values(values, f"{where}.attributes.{column}"), negate))
    return out


def _values(value: Any, field: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if (not isinstance(items, list) or not 0 < len(items) <= MAX_CONDITION_VALUES
            or not all(isinstance(v, str) and v.strip() and len(v) <= 200 for v in items)):
        raise SearchInputError(field, f"{field} must be a non-empty string or a list of 1 to "
                                      f"{MAX_CONDITION_VALUES} non-empty strings")
    return tuple(v.strip() for v in items)


def request_from_form(form: MultiDict[str, str], upload: Any) -> SearchRequest:
    """A SearchRequest from multipart form fields and an optional ``image`` file."""
    vectors = [v.strip() for raw in form.getlist("vectors") for v in raw.split(",") if v.strip()]
    # A form submitted without choosing a file sends an empty part with no filename: that is "no image".
    image = upload.read() if upload is not None and (upload.filename or upload.content_length) else None
    return SearchRequest(
        text=form.get("text"), image=image, vectors=tuple(vectors),
        filters=SearchFilters(category=form.get("category") or None,
                              price_min=_form_number(form, "price_min"), price_max=_form_number(form, "price_max"),
                              in_stock=_form_bool(form, "in_stock"), conditions=_form_conditions(form)),
        k=parse_int(form.get("k"), "k", 10))


def _form_conditions(form: MultiDict[str, str]) -> tuple[FieldCondition, ...]:
    """``color``/``brand``/``level`` form fields (repeatable) and their ``exclude_`` forms."""
    raw: dict[str, Any] = {k: form.getlist(k) for k in ("color", "brand", "level") if form.getlist(k)}
    excluded: dict[str, Any] = {k: form.getlist(f"exclude_{k}") for k in ("color", "brand", "level")
                                if form.getlist(f"exclude_{k}")}
    return (*_conditions(raw, "filters", False), *_conditions(excluded, "filters.exclude", True))


def _opt_str(value: Any, field: str) -> str | None:
    if value is None or isinstance(value, str):
        return value or None
    raise SearchInputError(field, f"{field} must be a string")


def _form_number(form: MultiDict[str, str], name: str) -> float | None:
    raw = (form.get(name) or "").strip()
    try:
        return float(raw) if raw else None
    except ValueError as exc:
        raise SearchInputError(f"filters.{name}", f"{name} must be a number, got {raw!r}") from exc


def _form_bool(form: MultiDict[str, str], name: str) -> bool:
    raw = (form.get(name) or "").strip().lower()
    if raw in {"", "0", "false", "no", "off"}:
        return False
    if raw in {"1", "true", "yes", "on"}:
        return True
    raise SearchInputError(f"filters.{name}", f"{name} must be true or false, got {raw!r}")


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
