"""The widget in a real browser (Debian chromium via playwright) against the API under a real gunicorn."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from recommender.config import WeaviateSettings
from recommender.events.backend import SqliteEventLog
from recommender.store.ports import free_port
from tests.browser_shop import ARTIFACTS, api_env, browser_page, gunicorn, http_get, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api(shop: tuple[WeaviateSettings, Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The API's base URL under gunicorn (one server for the module)."""
    env = {**api_env(*shop), "RECSYS_AUTH__DEMO_TOKENS": "true"}  # the demo page plays the shop's backend
    with gunicorn(env, tmp_path_factory.mktemp("gunicorn") / "gunicorn.log") as base:
        yield base


def test_widget_renders_cards_and_records_views_and_clicks(shop: tuple[WeaviateSettings, Path, Path],
                                                           api: str) -> None:
    data_dir, base = shop[2], api
    with browser_page() as page:
        warnings: list[str] = []
        failed: list[str] = []
        page.on("console", lambda m: warnings.append(m.text) if m.type == "warning" else None)
        page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
        page.goto(f"{base}/demo")
        anchor = page.url.rsplit("/", 1)[1]
        assert page.url == f"{base}/demo/products/{anchor}" and anchor.startswith("P")
        page.wait_for_selector(".recsys-card", timeout=15_000)
        page.wait_for_function("[...document.querySelectorAll('.recsys-card img')].every(i => i.complete)")
        cards = page.locator(".recsys-card")
        assert cards.count() == 6
        widths = page.eval_on_selector_all(".recsys-card img", "imgs => imgs.map(i => i.naturalWidth)")
        assert len(widths) == 6 and all(w > 0 for w in widths), widths
        whys = page.eval_on_selector_all(".recsys-why", "els => els.map(e => e.textContent)")
        assert len(whys) == 6 and all(w.strip().endswith(".") for w in whys), whys
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "widget.png"), full_page=True)
        # the shopper is the one the page's token names (the demo's cookie), not an id the browser made up
        user = next(c["value"] for c in page.context.cookies() if c["name"] == "recsys_demo_shopper")
        assert user.startswith("demo-") and "Bearer" not in page.content()
        clicked = cards.first.get_attribute("data-product-id")
        cards.first.click()
        page.wait_for_url(f"**/demo/products/{clicked}")
        page.wait_for_selector(".recsys-card", timeout=15_000)

        def recorded() -> list[tuple[str, str]]:
            with SqliteEventLog(data_dir / "events.sqlite3") as log:
                mine = [e for e in log.events() if e.user_id == user]
            assert all(e.trust == "anonymous" and e.origin for e in mine)  # a browser write, counted by network
            return sorted((e.product_id, e.event) for e in mine)

        # the anchor's view when the widget was shown, the click stored as a view; no second view on its page
        assert wait_for(lambda: recorded() == sorted([(anchor, "view"), (clicked, "view")])), recorded()
        metrics = http_get(f"{base}/metrics")[1].decode()
        assert 'recsys_events_total{type="click"} 1' in metrics
        assert 'recsys_events_total{type="view"} 1' in metrics
        assert warnings == [] and [u for u in failed if not u.endswith("/favicon.ico")] == []


def test_widget_stays_quiet_when_the_api_is_down(api: str) -> None:
    dead, base = f"http://127.0.0.1:{free_port('127.0.0.1')}", api
    with browser_page() as page:
        warnings: list[str] = []
        page.on("console", lambda m: warnings.append(m.text) if m.type in ("warning", "error") else None)
        page.goto(f"{base}/healthz")  # any page of the API origin, to load the script from
        page.set_content(f'<div data-recsys-product="P00001"></div><div data-recsys-product="P00002"></div>'
                         f'<script src="{base}/widget/recsys-widget.js" data-api="{dead}"></script>')
        for _ in range(100):  # the sync API delivers console events only while it waits on the page
            if any("recsys widget" in w for w in warnings):
                break
            page.wait_for_timeout(100)
        page.wait_for_timeout(300)  # both containers have failed by now: still one warning
        assert page.locator(".recsys-card").count() == 0
        ours = [w for w in warnings if "recsys widget" in w]
        assert len(ours) == 1, warnings
