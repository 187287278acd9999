"""Hostile input to the HTTP API that needs no store: always a JSON 4xx naming the field, never a 500."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api.app import create_app
from api.metrics import method_label, status_label
from recommender.config import Settings

POST_ENDPOINTS = ("/v1/events", "/v1/search", "/v1/ask")
DEEP = "[" * 10_000 + "]" * 10_000


@pytest.fixture
def app(tmp_path: Path) -> Flask:
    return create_app(Settings(data_dir=tmp_path))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


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


def test_a_made_up_method_is_a_json_405_and_adds_no_metric_label(client: FlaskClient) -> None:
    for method in ("BREW", "X-ANYTHING-1", "X-ANYTHING-2"):
        res = client.open("/v1/search", method=method)
        assert res.status_code == 405 and res.json is not None and res.json["error"]["code"] == "method_not_allowed"
    text = client.get("/metrics").get_data(as_text=True)
    assert "BREW" not in text and "X-ANYTHING" not in text
    assert 'method="other",status="405"} 3' in text
    assert (method_label("get"), status_label(404), status_label(299), status_label(999)) == (
        "other", "404", "2xx", "5xx")
