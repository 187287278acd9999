"""URLs the API puts in response bodies, never built from the request's Host header (a client controls it).

With ``api.public_base_url`` set (``https://shop.example/recsys``) they are absolute under it; unset, they are
relative paths (``/v1/products/P1/image``), which the widget resolves against the API it talks to.
"""

from __future__ import annotations

from typing import Any

from flask import url_for

from api.state import state


def public_url(endpoint: str, **values: Any) -> str:
    """The URL of ``endpoint``: under the configured public base, else a relative path."""
    path = url_for(endpoint, **values)
    base = state().settings.api.public_base_url
    return f"{base.rstrip('/')}{path}" if base else path


def product_image_url(product_id: str, ref: str | None) -> str | None:
    """A product image's URL: its own http(s) URL, else the API's image endpoint; None when it has no image."""
    if not ref:
        return None
    if ref.startswith(("http://", "https://")):
        return ref
    return public_url("products.image", product_id=product_id)
