"""``GET /v1/products/<id>`` (the stored product) and ``GET /v1/products/<id>/image`` (its catalog image file).

Images are served only from ``ApiSettings.catalog_dir``: a stored path that resolves outside it (``..``,
absolute paths, symlinks leading out) is refused with a 404, never read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, jsonify, redirect, send_file

from api.errors import ApiError
from api.models import ProductPath
from api.recommendations import image_url
from api.responses import Error
from api.responses import Product as ProductBody
from api.schema import Operation, Reply, operation
from api.state import state
from api.validation import clean_id
from recommender.store.item_cache import item_view

bp = Blueprint("products", __name__, url_prefix="/v1")

_FIELDS = ("product_id", "title", "description", "category", "color", "brand", "price", "in_stock", "variant_group")


def product_or_404(product_id: str) -> dict[str, Any]:
    """The stored properties of a product; 400 for a malformed id, 404 in the one error shape when unknown."""
    product_id = clean_id(product_id, "product_id")
    with state().store() as store:
        props = store.get(product_id)
    if props is None:
        raise ApiError(404, "not_found", f"unknown product {product_id!r}", "product_id")
    return props


@bp.get("/products/<product_id>")
@operation(Operation("A product's public properties", path=ProductPath, responses={
    200: Reply("the product", (ProductBody,)), 404: Reply("unknown product", (Error,))}))
def product(product_id: str) -> Response:
    """One product's public properties, with its image URL."""
    props = product_or_404(product_id)
    body: dict[str, Any] = {name: props.get(name) for name in _FIELDS}
    body["attributes"] = json.loads(props.get("attributes_json") or "{}")
    body["image_url"] = image_url(item_view(props, {}))
    return jsonify(body)


@bp.get("/products/<product_id>/image")
@operation(Operation("The product's image file from the configured catalog folder", path=ProductPath, responses={
    200: Reply("the image", media="image/*"), 302: Reply("redirect to the product's own http(s) image URL", media=None),
    404: Reply("unknown product or no image served", (Error,))}))
def image(product_id: str) -> Response:
    """The product's image file from the catalog folder (or a redirect to its http(s) URL)."""
    props = product_or_404(product_id)
    stored = str(props.get("image") or "")
    if stored.startswith(("http://", "https://")):
        return redirect(stored)  # type: ignore[return-value]
    catalog = state().settings.api.catalog_dir
    if not stored or catalog is None:
        raise ApiError(404, "not_found", f"product {product_id!r} has no image served here", "product_id")
    path = safe_path(catalog, stored)
    if path is None:
        raise ApiError(404, "not_found", f"the image of product {product_id!r} is not available", "product_id")
    response = send_file(path, max_age=3600)
    return response


def safe_path(root: Path, relative: str) -> Path | None:
    """``root / relative`` when it is an existing file inside ``root`` (after resolving links), else None."""
    base = root.resolve()
    candidate = (base / relative).resolve()
    if not candidate.is_relative_to(base) or not candidate.is_file():
        return None
    return candidate
