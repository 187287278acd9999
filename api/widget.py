"""The widget asset (``/widget/recsys-widget.js``) and a demo product page that embeds it (``/demo/...``).

The demo page shows the ask box about the viewed product above the "you may also like" cards.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, redirect, send_from_directory, url_for
from markupsafe import escape

from api.products import product_or_404
from api.recommendations import image_url
from api.state import state
from recommender.store.item_cache import item_view

STATIC = Path(__file__).with_name("static")

bp = Blueprint("widget", __name__)

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · demo shop</title>
<style>
body{{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#222}}
.product{{display:flex;gap:2em;align-items:flex-start}}
.product img{{width:240px;height:240px;object-fit:cover;border-radius:8px;background:#eee}}
.meta{{color:#666}}
</style></head>
<body>
<p class="meta">Demo shop · <a href="{home}">first product</a></p>
<div class="product">
  {image}
  <div><h1>{title}</h1><p class="meta">{category} · {color} · {brand}</p>
  <p><strong>{price}</strong> · {stock}</p><p>{description}</p></div>
</div>
<div id="ask" data-recsys-ask-product="{product_id}"></div>
<div id="recs" data-recsys-product="{product_id}" data-recsys-k="6"></div>
<script src="{widget}" data-link="/demo/products/{{id}}" async></script>
</body></html>
"""


@bp.get("/widget/<path:name>")
def asset(name: str) -> Response:
    """A widget file (only what is in ``api/static``)."""
    response = send_from_directory(STATIC, name, max_age=300)
    response.headers["Access-Control-Allow-Origin"] = "*"  # a public script: any shop may load it
    return response


@bp.get("/demo")
def demo_home() -> Response:
    """Redirect to the demo page of the first stored product."""
    with state().store() as store:
        first = next(store.iter_ids(), None)
    if first is None:
        return Response("the store holds no products yet (run `recsys vectorize`)", status=404, mimetype="text/plain")
    return redirect(url_for("widget.demo_product", product_id=first))  # type: ignore[return-value]


@bp.get("/demo/products/<product_id>")
def demo_product(product_id: str) -> Response:
    """A minimal product page with the ask box and the widget under it."""
    props = product_or_404(product_id)
    src = image_url(item_view(props, {}))
    price = props.get("price")
    html = _PAGE.format(
        title=escape(props.get("title") or product_id), product_id=escape(product_id),
        home=url_for("widget.demo_home"), widget=url_for("widget.asset", name="recsys-widget.js"),
        image=f'<img src="{escape(src)}" alt="">' if src else "",
        category=escape(props.get("category") or ""), color=escape(props.get("color") or ""),
        brand=escape(props.get("brand") or ""), price=f"{price:.2f}" if price is not None else "price on request",
        stock="in stock" if props.get("in_stock", True) else "out of stock",
        description=escape(props.get("description") or ""))
    return Response(html, mimetype="text/html")
