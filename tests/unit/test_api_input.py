"""Hostile input to the HTTP API that needs no store: always a JSON 4xx naming the field, never a 500."""

from __future__ import annotations

import io
import json
import math
import socket
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from flask import Flask
from flask.json.provider import DefaultJSONProvider
from flask.testing import FlaskClient

from api.app import create_app
from api.errors import ApiError
from api.gunicorn_errors import write_json_error
from api.metrics import method_label, status_label
from api.recommendations import image_url
from api.urls import product_image_url
from api.validation import clean_id, optional_id
from recommender.config import ApiSettings, Settings
from recommender.domain import ItemView
from recommender.search.searcher import SearchInputError
from recommender.trust_settings import AuthSettings

POST_ENDPOINTS = ("/v1/events", "/v1/search", "/v1/ask")
DEEP = "[" * 10_000 + "]" * 10_000


SERVER_KEY = "test-server-key-0123456789abcdef"


@pytest.fixture
def app(tmp_path: Path) -> Flask:
    return create_app(Settings(data_dir=tmp_path, auth=AuthSettings(server_key=SERVER_KEY)))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {SERVER_KEY}"  # the body checks, not the credentials
    return client


@pytest.mark.parametrize("path", POST_ENDPOINTS)
@pytest.mark.parametrize("body", [DEEP, '{"events": ' + DEEP + "}", "{not json"])
def test_unparsable_json_is_a_400_naming_the_body(client: FlaskClient, path: str, body: str) -> None:
    res = client.post(path, data=body, content_type="application/json")
    assert res.status_code == 400, res.get_data(as_text=True)[:200]
    assert res.json is not None and res.json["error"]["field"] == "body"


def test_a_deeply_nested_conversation_form_field_is_a_400(client: FlaskClient) -> None:
    res = client.post("/v1/ask", data={"question": "shoes", "conversation": "[" * 5_000 + "]" * 5_000},
                      content_type="multipart/form-data")
    assert res.status_code == 400 and res.json is not None and res.json["error"]["field"] == "conversation"


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_responses_never_carry_nan_or_infinity(app: Flask, value: float) -> None:
    with app.app_context(), pytest.raises(ValueError):
        app.json.dumps({"score": value})
    with app.app_context(), pytest.raises(ValueError):  # deep down, beside a real null
        app.json.response({"items": [{"price": None, "signals": {"text": 0.5, "image": value}}]})


@dataclass(frozen=True)
class _Row:
    day: date
    amount: Decimal


def test_response_bodies_read_as_the_standard_encoders(app: Flask) -> None:
    """What the orjson writer sends parses to what Flask's standard provider wrote, dates as HTTP dates and
    dataclasses as dicts included; text is UTF-8 as it is; integers past 64 bits still go out."""
    body = {"title": "Café “crème” ☕", "tiny": -3e-05, "huge": 1e300, "none": None, "ok": True, 7: "seven",
            "row": _Row(date(2026, 12, 6), Decimal("19.90")), "when": datetime(2026, 12, 6, 20, 1, tzinfo=UTC),
            "ids": ("a", "b")}
    standard = DefaultJSONProvider(app)
    standard.sort_keys = False
    with app.app_context():
        res = app.json.response(body)
        text = app.json.dumps({"title": "Café"})
    assert res.mimetype == "application/json" and res.data.endswith(b"}\n")
    assert json.loads(res.data) == json.loads(standard.dumps(body))
    assert "Café “crème” ☕".encode() in res.data and text == '{"title":"Café"}'
    with app.app_context():  # past 64 bits: only the standard encoder writes it
        assert json.loads(app.json.response({"big": 2**70, "t": "é"}).data) == {"big": 2**70, "t": "é"}


def test_a_made_up_method_is_a_json_405_and_adds_no_metric_label(client: FlaskClient) -> None:
    for method in ("BREW", "X-ANYTHING-1", "X-ANYTHING-2"):
        res = client.open("/v1/search", method=method)
        assert res.status_code == 405 and res.json is not None and res.json["error"]["code"] == "method_not_allowed"
    text = client.get("/metrics").get_data(as_text=True)
    assert "BREW" not in text and "X-ANYTHING" not in text
    assert 'method="other",status="405"} 3' in text
    assert (method_label("get"), status_label(404), status_label(299), status_label(999)) == (
        "other", "404", "2xx", "5xx")


@pytest.mark.parametrize(("method", "path", "kwargs"), [
    ("GET", "/v1/products/P00010/recommendations?k=5_0", {}),
    ("GET", "/v1/users/u1/recommendations?k=%D9%A5", {}),  # an Arabic-Indic 5: int() takes it
    ("POST", "/v1/search", {"data": {"text": "jeans", "k": "5_0"}, "content_type": "multipart/form-data"}),
    ("POST", "/v1/ask", {"data": {"question": "jeans", "k": "5_0"}, "content_type": "multipart/form-data"}),
    ("POST", "/v1/ask", {"data": {"question": "jeans", "k": "²"}, "content_type": "multipart/form-data"}),
])
def test_integers_are_plain_decimal_digits(client: FlaskClient, method: str, path: str, kwargs: dict) -> None:
    res = client.open(path, method=method, **kwargs)
    assert res.status_code == 400 and res.json is not None and res.json["error"]["field"] == "k"


@pytest.mark.parametrize(("path", "field"), [
    ("/v1/products/P%00/recommendations", "product_id"),
    ("/v1/products/P1/recommendations?user_id=u%01", "user_id"),
    ("/v1/products/P1/recommendations?session_id=" + "s" * 300, "session_id"),
    ("/v1/users/u%1B1/recommendations", "user_id"),
    ("/v1/products/P%7F", "product_id"),
    ("/v1/products/P%00/image", "product_id"),
])
def test_ids_with_control_characters_or_over_long_are_a_400(client: FlaskClient, path: str, field: str) -> None:
    res = client.get(path)
    assert res.status_code == 400 and res.json is not None and res.json["error"]["field"] == field


def test_ask_refuses_a_bad_product_id(client: FlaskClient) -> None:
    res = client.post("/v1/ask", json={"question": "like this", "product_id": "P\x00"})
    assert res.status_code == 400 and res.json is not None and res.json["error"]["field"] == "product_id"


def test_the_shared_id_rule() -> None:
    assert clean_id("  P00010  ", "product_id") == "P00010"
    assert optional_id("   ", "session_id") is None
    with pytest.raises(ApiError) as info:
        clean_id("P\x00", "product_id")
    assert info.value.status == 400 and info.value.field == "product_id"


def test_error_messages_carry_no_memory_address(app: Flask) -> None:
    @app.get("/boom")
    def _boom() -> None:
        raise SearchInputError("image", f"cannot identify image file {io.BytesIO()!r}", "unprocessable")

    res = app.test_client().get("/boom")
    assert res.status_code == 422 and res.json is not None
    assert res.json["error"]["message"] == "cannot identify image file <_io.BytesIO object>"


@pytest.mark.parametrize(("base", "expected"), [
    (None, "/v1/products/P1/image"),
    ("https://shop.example/recsys/", "https://shop.example/recsys/v1/products/P1/image"),
])
def test_image_urls_never_copy_the_host_header(tmp_path: Path, base: str | None, expected: str) -> None:
    app = create_app(Settings(data_dir=tmp_path, api=ApiSettings(public_base_url=base)))
    with app.test_request_context("/", headers={"Host": "evil.example"}):
        view = ItemView("P1", image="images/p1.png")
        assert image_url(view) == expected and product_image_url("P1", "images/p1.png") == expected


@pytest.mark.parametrize("base", [None, "https://shop.example/recsys/"])
def test_a_pages_image_urls_are_url_for_of_each_product(tmp_path: Path, base: str | None) -> None:
    """One url_for per page, the ids quoted into it: the same URL as url_for of each id, whatever the id holds."""
    from flask import url_for

    from api.urls import ProductImageUrls

    app = create_app(Settings(data_dir=tmp_path, api=ApiSettings(public_base_url=base)))
    ids = ["P1", "a b", "ä/ö", "x?y#z", "100%", "PRODUCTIDMARK", "semi;colon+plus=eq&amp", "tab\tnl\n", "😀", "~._-"]
    with app.test_request_context("/", base_url="http://api.internal/prefix"):
        urls, head = ProductImageUrls(), base.rstrip("/") if base else ""
        for pid in ids:
            expected = head + url_for("products.image", product_id=pid)
            assert urls(pid, "images/x.png") == expected == product_image_url(pid, "images/x.png")
        assert urls("P1", "https://cdn.example/p1.jpg") == "https://cdn.example/p1.jpg"
        assert urls("P1", "") is None and urls("P1", None) is None


@pytest.mark.parametrize(("method", "path", "template", "kwargs"), [
    ("post", "/v1/search", "/v1/search", {"data": "x", "content_type": "text/plain"}),
    ("post", "/v1/search", "/v1/search", {"data": DEEP, "content_type": "application/json"}),
    ("post", "/v1/ask", "/v1/ask", {"data": "x", "content_type": "text/plain"}),
    ("post", "/v1/events", "/v1/events", {"data": "x", "content_type": "text/plain"}),
    ("post", "/v1/events", "/v1/events", {"data": DEEP, "content_type": "application/json"}),
    ("get", "/v1/products/P%00", "/v1/products/{product_id}", {}),
    ("get", "/v1/products/P%00/image", "/v1/products/{product_id}/image", {}),
    ("get", "/v1/users/u1/recommendations?k=x", "/v1/users/{user_id}/recommendations", {}),
])
def test_openapi_documents_the_statuses_returned(client: FlaskClient, method: str, path: str, template: str,
                                                 kwargs: dict) -> None:
    spec = client.get("/openapi.json").json
    res = client.open(path, method=method.upper(), **kwargs)
    assert str(res.status_code) in spec["paths"][template][method]["responses"], res.status_code
    for path_, operations in spec["paths"].items():  # the store can refuse a query wherever /v1 uses it
        for operation in operations.values():
            statuses = operation["responses"]
            assert not path_.startswith("/v1/") or "503" not in statuses or "500" in statuses, path_


def test_gunicorn_errors_are_json() -> None:
    server, client = socket.socketpair()
    with server, client:
        write_json_error(server, 400, "Bad Request", "Request Line is too large (8192 > 4094)")
        raw = client.recv(65536).decode("latin-1")
    head, _, body = raw.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 400 Bad Request") and "Content-Type: application/json" in head
    assert f"Content-Length: {len(body)}" in head
    assert json.loads(body) == {"error": {"code": "bad_request", "message": "Request Line is too large (8192 > 4094)",
                                          "field": None}}
