"""The widget in a real browser (Debian chromium via playwright) against the API under a real gunicorn."""

from __future__ import annotations

import csv
import os
import shutil
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest

from recommender.config import ImageEncoderSettings, Settings, WeaviateSettings
from recommender.encoders.image import OpenClipImageEncoder
from recommender.encoders.text import SentenceTransformerEncoder
from recommender.events.log import EventLog
from recommender.store.ports import free_port
from recommender.store.products import ProductStore
from recommender.vectorize import Vectorizer
from tests.gunicorn_server import gunicorn as serve
from tests.recsys_data import trained_data_dir

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "fixtures"
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
N_PRODUCTS = 60
IMAGE_SIZE = 64


def require_chromium() -> None:
    """Fail in CI (the e2e test is never skipped there), skip locally, when chromium is not installed."""
    if CHROMIUM.is_file():
        return
    message = f"{CHROMIUM} not found: apt-get install chromium chromium-driver (scripts/test.sh does it)"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def shop_catalog(dest: Path) -> Path:
    """The first N_PRODUCTS fixture products with their images and the events among them."""
    (dest / "images").mkdir(parents=True)
    for name, keep in (("products.csv", None), ("events.csv", "product_id")):
        with (FIXTURES / name).open(newline="") as fh:
            reader = csv.DictReader(fh)
            rows = list(reader)
            fields = list(reader.fieldnames or [])
        if keep is None:
            rows = rows[:N_PRODUCTS]
            ids = {r["product_id"] for r in rows}
            for r in rows:
                shutil.copy(FIXTURES / r["image"], dest / r["image"])
        else:
            rows = [r for r in rows if r[keep] in ids]
        with (dest / name).open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
    return dest


@pytest.fixture(scope="module")
def shop(weaviate_server, tmp_path_factory: pytest.TempPathFactory  # type: ignore[no-untyped-def]
         ) -> Iterator[tuple[WeaviateSettings, Path, Path]]:
    """(weaviate settings, catalog dir, data dir): products vectorized, events imported, a model published."""
    require_chromium()
    settings = WeaviateSettings(host=weaviate_server.host, http_port=weaviate_server.http_port,
                                grpc_port=weaviate_server.grpc_port, collection=f"Widget_{uuid.uuid4().hex[:12]}")
    catalog = shop_catalog(tmp_path_factory.mktemp("shop"))
    data_dir = tmp_path_factory.mktemp("shop-data")
    trained_data_dir(data_dir, catalog)
    with ProductStore.open(settings) as store:
        Vectorizer(store, SentenceTransformerEncoder(Settings().text_encoder),
                   OpenClipImageEncoder(ImageEncoderSettings(image_size=IMAGE_SIZE)), Settings().vectorize,
                   progress=False).run(catalog)
        try:
            yield settings, catalog, data_dir
        finally:
            store.drop()


def _get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def gunicorn(env_extra: dict[str, str], log: Path) -> AbstractContextManager[str]:
    """The API under gunicorn (4 threads: the page, its images and the widget's calls arrive together)."""
    return serve(env_extra, log, threads=4)


def _env(weaviate: WeaviateSettings, catalog: Path, data_dir: Path) -> dict[str, str]:
    """The env that points the API at the shop's collection, catalog and data dir."""
    return {"RECSYS_WEAVIATE__HOST": weaviate.host, "RECSYS_WEAVIATE__HTTP_PORT": str(weaviate.http_port),
            "RECSYS_WEAVIATE__GRPC_PORT": str(weaviate.grpc_port), "RECSYS_WEAVIATE__COLLECTION": weaviate.collection,
            "RECSYS_DATA_DIR": str(data_dir), "RECSYS_API__CATALOG_DIR": str(catalog)}


@contextmanager
def browser_page() -> Iterator[Any]:
    """A page in the system chromium (never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1000, "height": 900})
        finally:
            browser.close()


def _wait_for(predicate: Any, timeout_s: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    return predicate()


@pytest.fixture(scope="module")
def api(shop: tuple[WeaviateSettings, Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The API's base URL under gunicorn (one server for the module)."""
    with gunicorn(_env(*shop), tmp_path_factory.mktemp("gunicorn") / "gunicorn.log") as base:
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
        user = page.evaluate("localStorage.getItem('recsys_uid')")
        clicked = cards.first.get_attribute("data-product-id")
        cards.first.click()
        page.wait_for_url(f"**/demo/products/{clicked}")
        page.wait_for_selector(".recsys-card", timeout=15_000)

        def recorded() -> list[tuple[str, str]]:
            with EventLog.in_data_dir(data_dir) as log:
                return sorted((e.product_id, e.event) for e in log.user_history(user))

        # the anchor's view when the widget was shown, the click stored as a view; no second view on its page
        assert _wait_for(lambda: recorded() == sorted([(anchor, "view"), (clicked, "view")])), recorded()
        metrics = _get(f"{base}/metrics")[1].decode()
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
