"""URLs the API puts in response bodies, never built from the request's Host header (a client controls it).

With ``api.public_base_url`` set (``https://shop.example/recsys``) they are absolute under it; unset, they are
relative paths (``/v1/products/P1/image``), which the widget resolves against the API it talks to.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from flask import url_for

from api.state import state

_MARK = "PRODUCTIDMARK"  # a product id that URL quoting leaves as it is: where each product's id goes
_PATH_SAFE = "!$&'()*+,/:;=@"  # what werkzeug's default (string) converter leaves unquoted in a path segment


def public_url(endpoint: str, **values: Any) -> str:
    """The URL of ``endpoint``: under the configured public base, else a relative path."""
    path = url_for(endpoint, **values)
    base = state().settings.api.public_base_url
    return f"{base.rstrip('/')}{path}" if base else path


class ProductImageUrls:
    """``product_image_url`` for one request, the endpoint's URL built once (``url_for`` per item of a page cost
    more than the rest of the item): the product's id is quoted into it as werkzeug's converter does."""

    def __init__(self) -> None:
        self._around: tuple[str, str] | None = None

    def __call__(self, product_id: str, ref: str | None) -> str | None:
        """A product image's URL: its own http(s) URL, else the API's image endpoint; None without an image."""
        if not ref:
            return None
        if ref.startswith(("http://", "https://")):
            return ref
        if self._around is None:
            head, _, tail = public_url("products.image", product_id=_MARK).rpartition(_MARK)
            self._around = (head, tail)
        return f"{self._around[0]}{quote(product_id, safe=_PATH_SAFE)}{self._around[1]}"


def product_image_url(product_id: str, ref: str | None) -> str | None:
    """A product image's URL: its own http(s) URL, else the API's image endpoint; None when it has no image."""
    return ProductImageUrls()(product_id, ref)
