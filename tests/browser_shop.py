"""Test helper for the browser tests: a small fixture shop, the API over it under gunicorn, the system chromium."""

from __future__ import annotations

import csv
import os
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest

from recommender.config import WeaviateSettings
from tests.gunicorn_server import gunicorn as serve

REPO = Path(__file__).resolve().parents[1]
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


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """(status, body) of a GET, error statuses included."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def gunicorn(env_extra: dict[str, str], log: Path) -> AbstractContextManager[str]:
    """The API under gunicorn (the shipped config: the page, its images and the widget's calls arrive together, from
    one browser and the test itself, so the per-address cap is raised above what they send at once)."""
    return serve({"RECSYS_SERVE__MAX_INFLIGHT_PER_IP": "32", **env_extra}, log)


def api_env(weaviate: WeaviateSettings, catalog: Path, data_dir: Path) -> dict[str, str]:
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


def wait_for(predicate: Any, timeout_s: float = 10.0) -> Any:
    """Poll ``predicate`` until it is truthy or the time is up; its last value."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    return predicate()
