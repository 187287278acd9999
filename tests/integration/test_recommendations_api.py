"""The recommendation service and the product-page API on the fixtures: real Weaviate, real SQLite, real implicit."""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient

import api.state
from api.app import create_app
from api.products import safe_path
from recommender.behaviour.als import ArtifactStore
from recommender.config import ApiSettings, RankingSettings, Settings, WeaviateSettings
from recommender.store.ports import free_port, free_ports
from recommender.trust_settings import AuthSettings
from tests.recsys_data import trained_data_dir

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
ORIGIN = "https://shop.example"
SERVER_KEY = "integration-server-key-0123456789abcdef"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Fixture events imported and a collaborative model published (shared, read-mostly)."""
    folder = tmp_path_factory.mktemp("recs-data")
    trained_data_dir(folder, FIXTURES)
    return folder


def make_app(weaviate: WeaviateSettings, data_dir: Path, auth: AuthSettings | None = None, **api: Any) -> Flask:
    settings = Settings(data_dir=data_dir, weaviate=weaviate,
                        api=ApiSettings(catalog_dir=FIXTURES, cors_origins=ORIGIN, **api),
                        ranking=RankingSettings(reload_interval_s=3600),
                        auth=auth or AuthSettings(server_key=SERVER_KEY))
    app = create_app(settings)
    app.config["SERVER_NAME"] = "api.test"
    return app


@pytest.fixture(scope="module")
def app(fixtures_weaviate: WeaviateSettings, data_dir: Path) -> Iterator[Flask]:
    application = make_app(fixtures_weaviate, data_dir)
    yield application
    application.extensions["recsys"].close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def new_app() -> Iterator[Callable[..., Flask]]:
    """``make_app`` for one test; every app it made is closed afterwards (no connection outlives the test)."""
    made: list[Flask] = []

    def make(weaviate: WeaviateSettings, data_dir: Path, auth: AuthSettings | None = None, **api: Any) -> Flask:
        made.append(make_app(weaviate, data_dir, auth, **api))
        return made[-1]

    yield make
    for application in made:
        application.extensions["recsys"].close()


def fixture_events() -> list[dict[str, str]]:
    with (FIXTURES / "events.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def products() -> dict[str, dict[str, str]]:
    with (FIXTURES / "products.csv").open(newline="") as fh:
        return {r["product_id"]: r for r in csv.DictReader(fh)}


def test_product_recommendations_carry_evidence_and_never_load_encoders(app: Flask, client: FlaskClient) -> None:
    res = client.get("/v1/products/P00001/recommendations?k=6")
    assert res.status_code == 200, res.json
    body = res.json
    items = body["items"]
    assert len(items) == 6 and body["model_version"] and body["fusion"] == "configured"
    ids = [i["product_id"] for i in items]
    assert "P00001" not in ids and len(set(ids)) == 6
    catalog = products()
    groups = [catalog[p]["variant_group"] or p for p in ids]
    assert len(set(groups)) == len(groups)  # max_per_variant_group = 1
    top = items[0]
    assert top["title"] == catalog[top["product_id"]]["title"]
    assert top["price"] == pytest.approx(float(catalog[top["product_id"]]["price"]))
    assert {"text", "image", "text_contribution", "cooccurrence"} <= set(top["signals"])
    assert top["explanation"]["source"] == "template" and top["explanation"]["text"].endswith(".")
    assert [i["score"] for i in items] == sorted((i["score"] for i in items), reverse=True)
    assert top["image_url"] == f"/v1/products/{top['product_id']}/image"  # relative: no public_base_url set
    with client.get(f"/v1/products/{top['product_id']}/image") as image:  # a file response: close it
        assert image.status_code == 200 and image.mimetype == "image/png" and image.data[:4] == b"\x89PNG"
    assert app.extensions["recsys"].encoders.loaded == ()  # the recommendation path loads no model
    assert client.get("/v1/products/P00001/recommendations?explain=none").json["items"][0]["explanation"] is None
    llm = client.get("/v1/products/P00001/recommendations?k=6&explain=llm").json["items"]  # backend: template
    assert [i["explanation"] for i in llm] == [i["explanation"] for i in items]


def test_shopper_history_personalises_and_purchases_are_excluded(client: FlaskClient) -> None:
    events = fixture_events()
    buyer = next(e["user_id"] for e in events if e["event"] == "purchase")
    bought = {e["product_id"] for e in events if e["user_id"] == buyer and e["event"] == "purchase"}
    anchor = next(iter(sorted(bought)))
    for url in (f"/v1/products/{anchor}/recommendations?k=20&user_id={buyer}",
                f"/v1/users/{buyer}/recommendations?k=20"):
        res = client.get(url)
        assert res.status_code == 200, res.json
        ids = {i["product_id"] for i in res.json["items"]}
        assert len(ids) == 20 and not ids & bought
    user_items = client.get(f"/v1/users/{buyer}/recommendations?k=5").json["items"]
    assert any(i["signals"].get("als_user", 0) != 0 for i in user_items)
    cold = client.get("/v1/users/never-seen/recommendations?k=5")
    assert cold.status_code == 200 and len(cold.json["items"]) == 5  # popularity answers a stranger


def test_filters_and_diversity_are_applied(client: FlaskClient) -> None:
    catalog = products()
    res = client.get("/v1/products/P00001/recommendations",
                     query_string={"k": 5, "category": "Unisex > Shoes", "price_max": 150, "diversity": 0.7})
    assert res.status_code == 200, res.json
    assert res.json["items"]
    for item in res.json["items"]:
        row = catalog[item["product_id"]]
        assert row["category"].startswith("Unisex > Shoes") and float(row["price"]) <= 150


@pytest.mark.parametrize(("query", "field"), [
    ("k=abc", "k"), ("k=0", "k"), ("k=5000", "k"), ("diversity=2", "diversity"), ("diversity=x", "diversity"),
    ("explain=poem", "explain"), ("price_min=cheap", "price_min"), ("price_min=10&price_max=5", "price_min"),
    ("in_stock=maybe", "in_stock"), ("colour=red", "colour"), ("price_max=nan", "price_max"),
])
def test_malformed_parameters_are_400_naming_the_field(client: FlaskClient, query: str, field: str) -> None:
    res = client.get(f"/v1/products/P00001/recommendations?{query}")
    assert res.status_code == 400 and res.json["error"]["field"] == field, res.json
    assert client.get(f"/v1/users/U0001/recommendations?{query}").json["error"]["field"] == field


def test_unknown_products_are_404(client: FlaskClient) -> None:
    for url in ("/v1/products/NOPE/recommendations", "/v1/products/NOPE", "/v1/products/NOPE/image",
                "/demo/products/NOPE"):
        res = client.get(url)
        assert res.status_code == 404 and res.json["error"]["field"] == "product_id", url


def test_product_document_and_demo_page(client: FlaskClient) -> None:
    res = client.get("/v1/products/P00002")
    assert res.status_code == 200
    assert res.json["title"] == products()["P00002"]["title"] and res.json["variant_group"] == "G0001"
    assert res.json["image_url"].endswith("/v1/products/P00002/image")
    page = client.get("/demo/products/P00002")
    assert page.status_code == 200 and b'data-recsys-product="P00002"' in page.data
    assert b"recsys-widget.js" in page.data and b'data-recsys-ask-product="P00002"' in page.data
    home = client.get("/demo")
    assert home.status_code == 302 and "/demo/products/P" in home.headers["Location"]
    with client.get("/widget/recsys-widget.js") as js:  # a file response: close it
        assert js.status_code == 200 and b"/v1/events" in js.data and b"/v1/ask" in js.data
    assert client.get("/widget/../state.py").status_code == 404


def test_image_paths_outside_the_catalog_are_never_served(tmp_path: Path) -> None:
    (tmp_path / "cat" / "images").mkdir(parents=True)
    (tmp_path / "cat" / "images" / "a.png").write_bytes(b"x")
    (tmp_path / "secret.txt").write_text("no")
    (tmp_path / "cat" / "images" / "link.png").symlink_to(tmp_path / "secret.txt")
    root = tmp_path / "cat"
    assert safe_path(root, "images/a.png") == (root / "images" / "a.png").resolve()
    for bad in ("../secret.txt", str(tmp_path / "secret.txt"), "images/link.png", "images/missing.png", "images"):
        assert safe_path(root, bad) is None, bad


def _post(client: FlaskClient, events: Any, **headers: str) -> Any:
    """Events sent by the shop's backend (the server key) unless other headers are given."""
    return client.post("/v1/events", data=json.dumps({"events": events}), content_type="application/json",
                       headers=headers or {"Authorization": f"Bearer {SERVER_KEY}"})


def test_events_are_validated_per_event_and_idempotent(app: Flask, client: FlaskClient) -> None:
    good = [{"user_id": "web-1", "product_id": "P00003", "event": "view", "timestamp": "2026-01-01T10:00:00Z",
             "session_id": "s-web-1"},
            {"user_id": "web-1", "product_id": "P00004", "event": "click", "timestamp": "2026-01-01T10:00:05Z",
             "session_id": "s-web-1"}]
    res = _post(client, good)
    assert res.status_code == 200 and res.json["inserted"] == 2 and res.json["rejected"] == []
    again = _post(client, good)
    assert again.status_code == 200 and (again.json["inserted"], again.json["duplicates"]) == (0, 2)
    mixed = _post(client, [good[0], {"user_id": "web-1", "product_id": "NOPE", "event": "view"},
                           {"user_id": "web-1", "product_id": "P00003", "event": "like"}, "junk"])
    assert mixed.status_code == 207
    assert [(r["index"], r["field"]) for r in mixed.json["rejected"]] == [(1, "product_id"), (2, "event"), (3, "event")]
    bad = _post(client, [{"user_id": "", "product_id": "P00003", "event": "view"}])
    assert bad.status_code == 400 and bad.json["error"]["field"] == "events[0].user_id"
    server = {"Authorization": f"Bearer {SERVER_KEY}"}
    assert client.post("/v1/events", data="{", content_type="application/json", headers=server).status_code == 400
    assert client.post("/v1/events", data="x", content_type="text/plain", headers=server).status_code == 415
    with app.extensions["recsys"].events.open() as log:
        history = log.user_history("web-1")
    assert [(e.product_id, e.event, e.session_id) for e in history] == [("P00004", "view", "s-web-1"),
                                                                         ("P00003", "view", "s-web-1")]
    # the shopper's session now steers their recommendations: its products are the freshest history
    shopper = app.extensions["recsys"].recommendations().shopper("web-1", "s-web-1")
    assert shopper.history == ("P00004", "P00003")


def test_one_bad_event_never_loses_the_good_ones(app: Flask, client: FlaskClient) -> None:
    batch = [{"user_id": "web-2", "product_id": "P00005", "event": "view", "timestamp": "2026-01-02T10:00:00Z"},
             {"user_id": "web-2", "product_id": "P00006", "event": "view", "timestamp": "9999-12-31T23:59:59-05:00"},
             {"user_id": " web-2 ", "product_id": "  P00007  ", "event": "cart", "timestamp": "2026-01-02T10:01:00Z"},
             {"user_id": "web-2\x00", "product_id": "P00008", "event": "view", "timestamp": "2026-01-02T10:02:00Z"}]
    res = _post(client, batch)
    assert res.status_code == 207 and res.json["inserted"] == 2, res.json
    assert [(r["index"], r["field"]) for r in res.json["rejected"]] == [(1, "timestamp"), (3, "user_id")]
    with app.extensions["recsys"].events.open() as log:
        assert [e.product_id for e in log.user_history("web-2")] == ["P00007", "P00005"]


def test_a_retry_without_timestamp_is_stored_once_with_its_event_id(client: FlaskClient) -> None:
    event = {"user_id": "web-3", "product_id": "P00009", "event": "view", "event_id": "web-3-e1"}
    assert _post(client, [event]).json["inserted"] == 1
    retry = _post(client, [event])
    assert retry.status_code == 200 and (retry.json["inserted"], retry.json["duplicates"]) == (0, 1)


def test_ids_are_trimmed_and_control_characters_refused(client: FlaskClient) -> None:
    res = client.get("/v1/products/%20%20P00002%20%20/recommendations?k=3&user_id=%20U0001%20")
    assert res.status_code == 200 and res.json["product_id"] == "P00002", res.json
    assert client.get("/v1/products/%20P00002%20").json["product_id"] == "P00002"
    for url in ("/v1/products/P00002%00/recommendations", "/v1/products/P00002/recommendations?session_id=%07"):
        res = client.get(url)
        assert res.status_code == 400 and res.json["error"]["field"] in {"product_id", "session_id"}, url
    assert client.get("/v1/products/P00002/recommendations?k=5_0").json["error"]["field"] == "k"


def test_oversized_bodies_and_batches_are_413(fixtures_weaviate: WeaviateSettings, data_dir: Path,
                                              new_app: Callable[..., Flask]) -> None:
    client = new_app(fixtures_weaviate, data_dir, max_content_length=2048, max_events_per_request=3).test_client()
    big = [{"user_id": "u", "product_id": "P00001", "event": "view"}] * 200
    res = _post(client, big)
    assert res.status_code == 413 and res.json["error"]["code"] == "request_entity_too_large"
    res = _post(client, big[:4])
    assert res.status_code == 413 and res.json["error"]["field"] == "events"


def test_server_key_and_cors(fixtures_weaviate: WeaviateSettings, data_dir: Path,
                             new_app: Callable[..., Flask]) -> None:
    client = new_app(fixtures_weaviate, data_dir).test_client()
    event = [{"user_id": "key-user", "product_id": "P00001", "event": "view"}]
    assert _post(client, event, **{"X-API-Key": SERVER_KEY}).status_code == 401  # the old header is gone
    assert _post(client, event, Authorization="Bearer wrong").json["error"]["field"] == "Authorization"
    assert _post(client, event).status_code == 200
    ok = client.get("/v1/products/P00001", headers={"Origin": ORIGIN})
    assert ok.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Access-Control-Allow-Origin" not in client.get("/v1/products/P00001",
                                                           headers={"Origin": "https://evil.example"}).headers
    pre = client.options("/v1/events", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"})
    assert pre.status_code == 200 and "Authorization" in pre.headers["Access-Control-Allow-Headers"]


def test_metrics_and_openapi_cover_every_endpoint(app: Flask, client: FlaskClient) -> None:
    client.get("/v1/products/P00001/recommendations?k=3")
    text = client.get("/metrics").get_data(as_text=True)
    rule = "/v1/products/<product_id>/recommendations"
    assert f'recsys_http_requests_total{{endpoint="{rule}",method="GET",status="200"}}' in text
    assert f'recsys_http_request_seconds_bucket{{endpoint="{rule}",le="+Inf",method="GET"}}' in text
    spec = client.get("/openapi.json").json
    documented = set(spec["paths"])
    for r in app.url_map.iter_rules():
        if r.endpoint != "static":
            path = r.rule.replace("<path:", "{").replace("<", "{").replace(">", "}")
            assert path in documented, path


def test_a_newly_published_model_is_picked_up(fixtures_weaviate: WeaviateSettings, tmp_path: Path,
                                              new_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch) -> None:
    switches: list[str] = []
    monkeypatch.setattr(api.state, "refreeze_heap", lambda: switches.append("switch"))  # a worker re-freezes
    version = trained_data_dir(tmp_path, FIXTURES)
    app = new_app(fixtures_weaviate, tmp_path)
    service = app.extensions["recsys"].recommendations()
    assert service.version == version and service.reload() is False
    artifacts = ArtifactStore.in_data_dir(tmp_path)
    current = artifacts.load()
    newer = artifacts.save(current.model, current.cooccurrence, {"events": 1})
    assert service.reload() is True and service.version == newer and service.fusion_kind == "configured"
    artifacts.publish(version)  # roll back
    assert service.reload() is True and service.version == version
    assert switches == ["switch", "switch"]
    assert app.test_client().get("/v1/products/P00001/recommendations?k=3").json["fusion"] == "configured"


def test_cold_start_without_artifacts_or_events(fixtures_weaviate: WeaviateSettings, tmp_path: Path,
                                                new_app: Callable[..., Flask]) -> None:
    client = new_app(fixtures_weaviate, tmp_path).test_client()
    res = client.get("/v1/products/P00001/recommendations?k=4")
    assert res.status_code == 200 and len(res.json["items"]) == 4 and res.json["model_version"] is None
    assert {"text", "image"} & set(res.json["items"][0]["sources"])


def test_weaviate_unreachable_is_503_json(data_dir: Path, new_app: Callable[..., Flask]) -> None:
    closed = WeaviateSettings(host="127.0.0.1", http_port=free_port("127.0.0.1"), grpc_port=free_port("127.0.0.1"),
                              collection="Nowhere")
    client = new_app(closed, data_dir).test_client()
    for res in (client.get("/v1/products/P00001/recommendations"), client.get("/v1/users/U0001/recommendations"),
                client.get("/v1/products/P00001"), _post(client, [{"user_id": "u", "product_id": "P1",
                                                                   "event": "view"}])):
        assert res.status_code == 503 and res.json["error"]["code"] == "store_unavailable", res.json


def test_for_product_latency_on_the_fixtures(app: Flask) -> None:
    """In-process latency of ``for_product`` over many anchors (warm cache); prints p50/p99."""
    service = app.extensions["recsys"].recommendations()
    events = fixture_events()
    anchors = sorted({e["product_id"] for e in events})[:120]
    users = [e["user_id"] for e in events[: len(anchors)]]
    for pid in anchors[:10]:
        service.for_product(pid, k=10)
    times = []
    for pid, user in zip(anchors, users, strict=True):
        t0 = time.perf_counter()
        items = service.for_product(pid, user_id=user, k=10).items
        times.append((time.perf_counter() - t0) * 1000)
        assert 0 < len(items) <= 10 and all(i.product_id != pid for i in items)
    p50, p99 = np.percentile(times, 50), np.percentile(times, 99)
    print(f"\nfor_product over {len(times)} anchors: p50 {p50:.1f} ms, p99 {p99:.1f} ms")  # a figure, not a gate


def test_recommendations_recover_when_weaviate_returns(fixtures_weaviate: WeaviateSettings, data_dir: Path) -> None:
    """Down at first (503, fast), then back: the same app serves. (A connection cut mid-flight is not exercised
    here: weaviate-client retries a gRPC search on UNAVAILABLE with 1+2+…+32 s of backoff, ~63 s.)"""
    from tests.integration.test_api_reconnect import Forwarder

    # both picked in one call: two separate picks may get the same port before either is bound
    http_port, grpc_port = free_ports(2, "127.0.0.1")
    http = Forwarder(http_port, fixtures_weaviate.http_port)
    grpc = Forwarder(grpc_port, fixtures_weaviate.grpc_port)
    app = make_app(replace(fixtures_weaviate, http_port=http.listen_port, grpc_port=grpc.listen_port), data_dir)
    client = app.test_client()
    url = "/v1/products/P00001/recommendations?k=3"
    try:
        t0 = time.perf_counter()
        down = client.get(url)
        assert down.status_code == 503 and down.json["error"]["code"] == "store_unavailable"
        assert time.perf_counter() - t0 < 60, "a down store must fail fast, not hang"
        http.start()
        grpc.start()
        again = client.get(url)
        assert again.status_code == 200 and len(again.json["items"]) == 3
    finally:
        app.extensions["recsys"].close()
        http.stop()
        grpc.stop()
