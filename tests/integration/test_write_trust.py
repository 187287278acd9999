"""The issue's attacks on event writes, against the real API, Weaviate and event log: each fails today's main."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from threadpoolctl import threadpool_limits

from api.app import create_app
from recommender.behaviour.fit import fit_behaviour
from recommender.config import ApiSettings, CollaborativeSettings, RankingSettings, Settings, WeaviateSettings
from recommender.events.tokens import issue_token, token_secret
from recommender.trust_settings import AuthSettings
from tests.recsys_data import trained_data_dir

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
KEY = "integration-server-key-0123456789abcdef"
SERVER = {"Authorization": f"Bearer {KEY}"}
TOKEN_ATTR = re.compile(r'data-token="([^"]+)"')


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("trust-data")
    trained_data_dir(folder, FIXTURES)
    return folder


@pytest.fixture(scope="module")
def app(fixtures_weaviate: WeaviateSettings, data_dir: Path) -> Iterator[Flask]:
    settings = Settings(data_dir=data_dir, weaviate=fixtures_weaviate, api=ApiSettings(catalog_dir=FIXTURES),
                        ranking=RankingSettings(reload_interval_s=3600),
                        auth=AuthSettings(server_key=KEY, demo_tokens=True))
    application = create_app(settings)
    yield application
    application.extensions["recsys"].close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def post(client: FlaskClient, events: list[dict[str, Any]], headers: dict[str, str] | None = None) -> Any:
    return client.post("/v1/events", json={"events": events}, headers=headers or {})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_nobody_but_the_shop_can_write_a_shoppers_purchases(app: Flask, client: FlaskClient) -> None:
    url = "/v1/users/U0001/recommendations?k=8"
    before = [i["product_id"] for i in client.get(url).json["items"]]
    fake = [{"user_id": "U0001", "product_id": pid, "event": "purchase"} for pid in before[:7]]
    secret = token_secret(app.extensions["recsys"].settings.auth, app.extensions["recsys"].settings.data_dir)
    assert post(client, fake).status_code == 401  # the issue: open by default
    assert post(client, fake, bearer(issue_token(secret, "attacker"))).status_code == 403  # another shopper's id
    own = [{k: v for k, v in e.items() if k != "user_id"} for e in fake]
    res = post(client, own, bearer(issue_token(secret, "U0001")))
    assert res.status_code == 403 and res.json["error"]["field"] == "events[0].event"  # purchases need the key
    assert [i["product_id"] for i in client.get(url).json["items"]] == before


def test_the_demo_page_carries_a_shopper_token_and_never_the_server_key(client: FlaskClient) -> None:
    page = client.get("/demo/products/P00001")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and KEY not in html and "api-key" not in html.lower()
    token = TOKEN_ATTR.search(html)
    assert token is not None and "recsys_demo_shopper" in page.headers["Set-Cookie"]
    res = post(client, [{"product_id": "P00002", "event": "click"}], bearer(token.group(1)))
    assert res.status_code == 200 and res.json["inserted"] == 1, res.json


def test_made_up_ids_cannot_make_a_product_the_most_popular(app: Flask, client: FlaskClient) -> None:
    """~110 fresh shopper ids (each with its own demo token, as anyone can get) view one unpopular product."""
    events_logs = app.extensions["recsys"].events
    with events_logs.open() as log:
        popularity = {pid: sum(kinds.values()) for pid, kinds in log.popularity().items()}
    target = min(popularity, key=popularity.__getitem__)
    for _ in range(110):
        fresh = app.test_client()  # no cookie: a new demo shopper each time
        token = TOKEN_ATTR.search(fresh.get("/demo/products/P00001").get_data(as_text=True))
        assert token is not None
        assert post(fresh, [{"product_id": target, "event": "view"}], bearer(token.group(1))).status_code == 200
    with events_logs.open() as log, threadpool_limits(1, "blas"):
        events = list(log.events())
        stored = [e for e in events if e.product_id == target and e.user_id.startswith("demo-")]
        behaviour = fit_behaviour(events, CollaborativeSettings(factors=4, iterations=2, threads=1),
                                  now=datetime.now(UTC))
    assert len(stored) == 110 and {(e.trust, bool(e.origin)) for e in stored} == {("anonymous", True)}
    top = max(behaviour.popularity, key=behaviour.popularity.__getitem__)
    assert top != target and behaviour.popularity[target] <= popularity[target] + 1
    assert max(behaviour.recent_popularity, key=behaviour.recent_popularity.__getitem__) != target


@pytest.mark.parametrize("timestamp", ["9999-12-31T00:00:00Z", "1970-01-01T00:00:00Z", "0001-01-01T00:00:00Z"])
def test_a_time_nobody_can_believe_is_a_400_naming_the_field(client: FlaskClient, timestamp: str) -> None:
    res = post(client, [{"user_id": "t", "product_id": "P00003", "event": "view", "timestamp": timestamp}], SERVER)
    assert res.status_code == 400 and res.json["error"]["field"] == "events[0].timestamp", res.json


def test_a_browser_event_from_days_ago_is_rejected(app: Flask, client: FlaskClient) -> None:
    settings = app.extensions["recsys"].settings
    token = issue_token(token_secret(settings.auth, settings.data_dir), "late-shopper")
    old = (datetime.now(UTC) - timedelta(days=3)).isoformat()
    res = post(client, [{"product_id": "P00003", "event": "view", "timestamp": old}], bearer(token))
    assert res.status_code == 400 and res.json["error"]["field"] == "events[0].timestamp"


def test_a_flood_of_views_keeps_the_shoppers_purchases(app: Flask, client: FlaskClient) -> None:
    now = datetime.now(UTC) - timedelta(hours=1)
    assert post(client, [{"user_id": "flood", "product_id": "P00010", "event": "purchase",
                          "timestamp": now.isoformat()}], SERVER).status_code == 200
    ids = [f"P{n:05d}" for n in range(20, 270)]
    for start in range(0, len(ids), 125):
        views = [{"user_id": "flood", "product_id": pid, "event": "view",
                  "timestamp": (now + timedelta(seconds=i + 1)).isoformat()}
                 for i, pid in enumerate(ids[start:start + 125], start)]
        assert post(client, views, SERVER).status_code == 200
    shopper = app.extensions["recsys"].recommendations().shopper("flood", None)
    assert "P00010" in shopper.purchased and "P00010" in shopper.history
    items = client.get("/v1/products/P00011/recommendations?k=20&user_id=flood").json["items"]
    assert "P00010" not in [i["product_id"] for i in items]
