"""The widget asset (``/widget/recsys-widget.js``) and a demo product page that embeds it (``/demo/...``).

The demo page shows the ask box about the viewed product above the "you may also like" cards. With
``auth.demo_tokens`` on it plays the shop's backend: it keeps a demo shopper id in a cookie and puts a shopper token
for it (trust ``anonymous``) in the page, never the server key; off (the default), the widget writes no events.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from flask import Blueprint, Response, redirect, request, send_from_directory, url_for
from markupsafe import escape

from api.auth import auth
from api.products import product_or_404
from api.recommendations import image_url
from api.state import state
from recommender.events.log import id_problem
from recommender.events.tokens import TRUST_ANONYMOUS
from recommender.store.item_cache import item_view

DEMO_COOKIE = "recsys_demo_shopper"

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
<script src="{widget}" data-link="/demo/products/{{id}}"{token} async></script>
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
    token, new_shopper = _demo_token()
    html = _PAGE.format(
        title=escape(props.get("title") or product_id), product_id=escape(product_id),
        home=url_for("widget.demo_home"), widget=url_for("widget.asset", name="recsys-widget.js"),
        image=f'<img src="{escape(src)}" alt="">' if src else "",
        category=escape(props.get("category") or ""), color=escape(props.get("color") or ""),
        brand=escape(props.get("brand") or ""), price=f"{price:.2f}" if price is not None else "price on request",
        stock="in stock" if props.get("in_stock", True) else "out of stock",
        description=escape(props.get("description") or ""), token=token)
    response = Response(html, mimetype="text/html")
    if new_shopper:
        response.set_cookie(DEMO_COOKIE, new_shopper, max_age=86_400, httponly=True, samesite="Lax")
    return response


def _demo_token() -> tuple[str, str | None]:
    """(`` data-token="…"``, a new demo shopper id to set in the cookie) when ``auth.demo_tokens`` is on."""
    settings = auth().settings.auth
    if not settings.demo_tokens or settings.browser_writes != "token":
        return "", None
    shopper, new = request.cookies.get(DEMO_COOKIE, ""), None
    if id_problem(shopper) or not shopper.startswith("demo-"):
        shopper = new = "demo-" + secrets.token_hex(8)
    token = auth().issue(shopper, None, settings.token_ttl_s, TRUST_ANONYMOUS)
    return f' data-token="{escape(token)}"', new
