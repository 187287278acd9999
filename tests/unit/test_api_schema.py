"""The schema library: one filter model for recommendations and search, shared field rules, and /openapi.json
generated from the same models (every route, every shared status, configured limits). No store needed: every
request here is refused before the store would be opened."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pydantic import TypeAdapter, ValidationError

from api.app import create_app
from api.fields import Bool, Id, Int, Number, ProductFilters
from recommender.config import RankingSettings, Settings
from recommender.domain import FieldCondition
from recommender.trust_settings import AuthSettings


@pytest.fixture
def app(tmp_path: Path) -> Flask:
    return create_app(Settings(data_dir=tmp_path))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def spec(client: FlaskClient) -> dict[str, Any]:
    body = client.get("/openapi.json").json
    assert isinstance(body, dict)
    return body


def _error(res: Any) -> tuple[int, str]:
    assert res.json is not None and set(res.json["error"]) == {"code", "message", "field"}, res.data[:200]
    return res.status_code, res.json["error"]["field"]


# (flat value for a query string or form, JSON value, field name)
BAD_FILTERS = [
    ("price_min", "-1", -1, "price_min"),
    ("price_max", "nan", "nan", "price_max"),
    ("price_max", "1e400", 10**400, "price_max"),
    ("in_stock", "maybe", "maybe", "in_stock"),
    ("category", "Women >  > Tops", "Women >  > Tops", "category"),
]


@pytest.mark.parametrize(("name", "flat", "json_value", "field"), BAD_FILTERS)
def test_recommendations_and_search_refuse_the_same_filters_by_the_same_rule(
        client: FlaskClient, name: str, flat: str, json_value: Any, field: str) -> None:
    recs = client.get("/v1/users/u1/recommendations", query_string={name: flat})
    form = client.post("/v1/search", data={"text": "jeans", name: flat}, content_type="multipart/form-data")
    body = client.post("/v1/search", json={"text": "jeans", "filters": {name: json_value}})
    assert _error(recs) == (400, field)
    assert _error(form) == (400, field)
    assert _error(body) == (400, f"filters.{field}")
    assert recs.json["error"]["message"] == form.json["error"]["message"]  # type: ignore[index]


def test_price_bounds_are_checked_against_each_other_everywhere(client: FlaskClient) -> None:
    query = {"price_min": "50", "price_max": "10"}
    assert _error(client.get("/v1/products/P1/recommendations", query_string=query)) == (400, "price_min")
    assert _error(client.post("/v1/search", data={"text": "x", **query}, content_type="multipart/form-data")) == (
        400, "price_min")
    assert _error(client.post("/v1/search", json={"text": "x", "filters": {"price_min": 50, "price_max": 10}})) == (
        400, "filters.price_min")


def test_flat_exclusions_are_named_as_sent(client: FlaskClient) -> None:
    res = client.post("/v1/search", data={"text": "x", "exclude_color": "c" * 300}, content_type="multipart/form-data")
    assert _error(res) == (400, "exclude_color")
    nested = client.post("/v1/search", json={"text": "x", "filters": {"exclude": {"attributes": {"usage": []}}}})
    assert _error(nested) == (400, "filters.exclude.attributes.usage")


def test_recommendations_refuse_filters_they_cannot_apply(client: FlaskClient) -> None:
    assert _error(client.get("/v1/users/u1/recommendations?color=red")) == (400, "color")


def test_the_one_filter_model_maps_to_both_domains() -> None:
    f = ProductFilters.model_validate({"category": " Women > Tops ", "price_min": "5", "price_max": 10,
                                       "in_stock": "false", "color": "red", "exclude": {"brand": ["Acme", " B "]},
                                       "attributes": {"usage": "Casual"}})
    store = f.product_filter()
    assert store is not None and store.category == ("Women", "Tops") and store.in_stock is False
    assert set(store.conditions) == {FieldCondition("color", ("red",)), FieldCondition("attr:usage", ("Casual",)),
                                     FieldCondition("brand", ("Acme", "B"), True)}
    search = f.search_filters()
    assert (search.category, search.price_min, search.price_max, search.in_stock) == ("Women > Tops", 5.0, 10.0,
                                                                                      False)
    assert ProductFilters().product_filter() is None


@pytest.mark.parametrize(("kind", "value", "expected"), [
    (Int, "42", 42), (Int, " -3 ", -3), (Int, 7, 7),
    (Number, "2.5", 2.5), (Number, "1e3", 1000.0), (Number, 3, 3.0),
    (Bool, "Yes", True), (Bool, "off", False), (Bool, False, False),
    (Id, "  P00010  ", "P00010"),
])
def test_shared_field_rules_accept(kind: Any, value: Any, expected: Any) -> None:
    assert TypeAdapter(kind).validate_python(value) == expected


@pytest.mark.parametrize(("kind", "value"), [
    (Int, "5_0"), (Int, "٥"), (Int, "²"), (Int, "5.0"), (Int, True), (Int, 5.0), (Int, "1" * 12),
    (Number, "nan"), (Number, "inf"), (Number, "1_0"), (Number, math.inf), (Number, 10**400), (Number, True),
    (Bool, "maybe"), (Bool, 1), (Id, "P\x00"), (Id, " "), (Id, "x" * 300), (Id, 5),
])
def test_shared_field_rules_refuse(kind: Any, value: Any) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(kind).validate_python(value)


def test_every_route_is_generated_with_the_shared_statuses(app: Flask, spec: dict[str, Any]) -> None:
    routes = {r.rule.replace("<path:", "<").replace("<", "{").replace(">", "}") for r in app.url_map.iter_rules()
              if r.endpoint != "static"}
    assert routes == set(spec["paths"])
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            statuses = set(op["responses"])
            if op.get("parameters") or op.get("requestBody"):
                assert "400" in statuses, (method, path)
            if op.get("requestBody"):
                assert {"413", "415"} <= statuses, (method, path)
            if path.startswith("/v1/"):
                assert "429" in statuses, (method, path)
            if path.startswith("/v1/") and path != "/v1/tokens":  # issuing a token reads no store
                assert {"500", "503"} <= statuses, (method, path)
    events = spec["paths"]["/v1/events"]["post"]
    assert {"401", "403"} <= set(events["responses"]) and events["security"] == [{"bearerAuth": []}]
    assert set(spec["components"]["securitySchemes"]) == {"bearerAuth"}


def test_documented_bodies_and_responses_come_from_the_models(spec: dict[str, Any]) -> None:
    search = spec["paths"]["/v1/search"]["post"]
    assert search["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/SearchBody"}
    form = search["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]
    assert form["image"] == {"description": "the query image", "format": "binary", "type": "string"}
    assert {"exclude_color", "price_min", "in_stock"} <= set(form)
    filters = spec["components"]["schemas"]["SearchBody"]["properties"]["filters"]
    assert {"$ref": "#/components/schemas/ProductFilters"} in filters["anyOf"]
    ok = spec["paths"]["/v1/products/{product_id}/recommendations"]["get"]["responses"]["200"]
    assert ok["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Recommendations"}
    params = {p["name"]: p for p in spec["paths"]["/v1/users/{user_id}/recommendations"]["get"]["parameters"]}
    assert set(params) == {"user_id", "k", "session_id", "diversity", "explain", "category", "price_min",
                           "price_max", "in_stock"}
    assert params["price_min"]["schema"] == {"maximum": 1e15, "minimum": 0, "type": "number"}


def test_configured_limits_are_validated_and_documented(tmp_path: Path) -> None:
    client = create_app(Settings(data_dir=tmp_path, ranking=RankingSettings(max_k=7))).test_client()
    spec = client.get("/openapi.json").json
    assert spec is not None
    params = {p["name"]: p for p in spec["paths"]["/v1/users/{user_id}/recommendations"]["get"]["parameters"]}
    assert params["k"]["schema"]["maximum"] == 7
    res = client.get("/v1/users/u1/recommendations?k=8")
    assert _error(res) == (400, "k") and "between 1 and 7" in res.json["error"]["message"]  # type: ignore[index]


KEY = "schema-test-server-key-0123456789abcdef"


@pytest.mark.parametrize(("path", "kwargs", "status", "field"), [
    ("/v1/search", {"json": {"text": "x", "k": "5_0"}}, 400, "k"),
    ("/v1/search", {"json": {"text": "x", "weights": {"text->text": "nan"}}}, 400, "weights.text->text"),
    ("/v1/search", {"json": {"text": "x", "vectors": "text"}}, 400, "vectors"),
    ("/v1/search", {"json": ["text"]}, 400, "body"),
    ("/v1/search", {"data": "", "content_type": "application/x-www-form-urlencoded"}, 415, "body"),
    ("/v1/ask", {"json": {"question": "x", "k": 21}}, 400, "k"),
    ("/v1/ask", {"json": {"question": 3}}, 400, "question"),
    ("/v1/ask", {"json": {"question": "x", "answer": "poem"}}, 400, "answer"),
    ("/v1/ask", {"data": {"question": "x", "conversation": "{" * 20_000}, "content_type": "multipart/form-data"},
     413, "conversation"),
    ("/v1/events", {"json": {"events": "nope"}}, 400, "events"),
    ("/v1/events", {"json": {}}, 400, "events"),
])
def test_bodies_are_refused_naming_the_field(tmp_path: Path, path: str, kwargs: dict[str, Any], status: int,
                                            field: str) -> None:
    client = create_app(Settings(data_dir=tmp_path, auth=AuthSettings(server_key=KEY))).test_client()
    headers = {"Authorization": f"Bearer {KEY}"}  # a write's credentials are checked first (401), then its body
    assert _error(client.post(path, headers=headers, **kwargs)) == (status, field)


def test_a_write_without_credentials_is_refused_before_its_body_is_read(client: FlaskClient) -> None:
    assert _error(client.post("/v1/events", json={"events": "nope"})) == (401, "Authorization")
