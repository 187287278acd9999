"""Who may write and how often, without a store: tokens, the server key, 401/403, rate limits, client addresses."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from flask import Flask
from flask.testing import FlaskClient

from api.app import create_app
from recommender.config import ApiSettings, Settings, load_settings
from recommender.errors import ConfigError
from recommender.events.tokens import (
    AUDIENCE,
    TRUST_ANONYMOUS,
    TokenInvalid,
    issue_token,
    token_secret,
    verify_token,
)
from recommender.trust_settings import AuthSettings, LimitSettings

KEY = "server-key-for-tests-0123456789abcdef"
SECRET = "token-secret-for-tests-0123456789abcdef"


def make(tmp_path: Path, auth: dict[str, Any] | None = None, limits: dict[str, Any] | None = None,
         **api: Any) -> Flask:
    return create_app(Settings(data_dir=tmp_path, api=ApiSettings(**api),
                               auth=AuthSettings(**{"server_key": KEY, "token_secret": SECRET, **(auth or {})}),
                               limits=LimitSettings(**(limits or {}))))


@pytest.fixture
def client(tmp_path: Path) -> FlaskClient:
    return make(tmp_path).test_client()


def post_events(client: FlaskClient, events: list[dict[str, Any]], credential: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {credential}"} if credential else {}
    return client.post("/v1/events", data=json.dumps({"events": events}), content_type="application/json",
                       headers=headers)


# ------------------------------------------------------------------------------------------------ tokens
def test_a_token_names_its_shopper_and_expires() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    token = issue_token(SECRET, "U1", session_id="S1", ttl_s=600, now=now)
    grant = verify_token(SECRET, token, now=now + timedelta(seconds=599))
    assert (grant.user_id, grant.session_id, grant.trust) == ("U1", "S1", "shopper") and grant.token_id
    with pytest.raises(TokenInvalid, match="expired"):
        verify_token(SECRET, token, now=now + timedelta(seconds=700))


@pytest.mark.parametrize("forge", ["other secret", "alg none", "other audience", "no expiry", "garbage"])
def test_a_forged_or_foreign_token_is_refused(forge: str) -> None:
    exp = int((datetime.now(UTC) + timedelta(hours=1)).timestamp())
    claims = {"sub": "victim", "aud": AUDIENCE, "jti": "j", "iat": exp - 3600, "exp": exp}
    token = {"other secret": lambda: jwt.encode(claims, "x" * 40, algorithm="HS256"),
             "alg none": lambda: jwt.encode(claims, None, algorithm="none"),
             "other audience": lambda: jwt.encode({**claims, "aud": "another-app"}, SECRET, algorithm="HS256"),
             "no expiry": lambda: jwt.encode({k: v for k, v in claims.items() if k != "exp"}, SECRET,
                                             algorithm="HS256"),
             "garbage": lambda: "a.b.c"}[forge]()
    with pytest.raises(TokenInvalid):
        verify_token(SECRET, token)


def test_the_generated_secret_is_made_once_private_and_shared(tmp_path: Path) -> None:
    first = token_secret(AuthSettings(), tmp_path)
    assert token_secret(AuthSettings(), tmp_path) == first and len(first) >= 32
    assert stat.S_IMODE((tmp_path / "auth" / "token-secret").stat().st_mode) == 0o600
    with pytest.raises(TokenInvalid, match="at least 32"):
        token_secret(AuthSettings(token_secret="short"), tmp_path)


def test_the_old_api_key_setting_says_what_replaced_it() -> None:
    with pytest.raises(ConfigError, match=r"auth\.server_key"):
        load_settings({"RECSYS_API__API_KEY": "k"})


# ------------------------------------------------------------------------------------------------ writes
def test_events_without_credentials_or_with_the_old_header_are_401(client: FlaskClient) -> None:
    event = [{"user_id": "victim", "product_id": "P00001", "event": "purchase"}]
    for res in (post_events(client, event), client.post("/v1/events", json={"events": event},
                                                         headers={"X-API-Key": KEY}),
                post_events(client, event, "not-the-key")):
        assert res.status_code == 401 and res.json["error"]["field"] == "Authorization", res.json


@pytest.mark.parametrize(("event", "field"), [
    ({"user_id": "victim", "product_id": "P00001", "event": "view"}, "events[0].user_id"),
    ({"product_id": "P00001", "event": "purchase"}, "events[0].event"),
    ({"product_id": "P00001", "event": "cart"}, "events[0].event"),
    ({"product_id": "P00001", "event": "view", "session_id": "other"}, "events[0].session_id"),
])
def test_a_token_writes_only_views_and_clicks_for_its_own_shopper(client: FlaskClient, event: dict[str, Any],
                                                                  field: str) -> None:
    token = issue_token(SECRET, "shopper-1", session_id="S1")
    res = post_events(client, [event], token)
    assert res.status_code == 403 and res.json["error"]["field"] == field, res.json


def test_a_token_batch_is_small(client: FlaskClient) -> None:
    token = issue_token(SECRET, "shopper-1")
    res = post_events(client, [{"product_id": "P00001", "event": "view"}] * 21, token)
    assert res.status_code == 413 and res.json["error"]["field"] == "events"


def test_no_browser_writes_refuses_every_token(tmp_path: Path) -> None:
    client = make(tmp_path, auth={"browser_writes": "off"}).test_client()
    res = post_events(client, [{"product_id": "P00001", "event": "view"}], issue_token(SECRET, "shopper-1"))
    assert res.status_code == 401 and "switched off" in res.json["error"]["message"]


def test_without_a_server_key_nobody_writes_server_events(tmp_path: Path) -> None:
    client = make(tmp_path, auth={"server_key": None}).test_client()
    assert post_events(client, [{"user_id": "u", "product_id": "P1", "event": "purchase"}], "").status_code == 401
    assert client.post("/v1/tokens", json={"user_id": "u"}).status_code == 401


def test_tokens_are_issued_only_with_the_server_key(client: FlaskClient) -> None:
    assert client.post("/v1/tokens", json={"user_id": "U7"}).status_code == 401
    assert client.post("/v1/tokens", json={"user_id": "U7"},
                       headers={"Authorization": "Bearer wrong"}).status_code == 401
    server = {"Authorization": f"Bearer {KEY}"}
    res = client.post("/v1/tokens", json={"user_id": " U7 ", "session_id": "S7", "ttl_s": 120}, headers=server)
    assert res.status_code == 200 and res.json["user_id"] == "U7"
    grant = verify_token(SECRET, res.json["token"])
    assert (grant.user_id, grant.session_id, grant.trust) == ("U7", "S7", "shopper")
    for body, field in (({"user_id": ""}, "user_id"), ({"user_id": "U", "ttl_s": 10**9}, "ttl_s"),
                        ({"user_id": "U", "admin": True}, "admin")):
        bad = client.post("/v1/tokens", json=body, headers=server)
        assert bad.status_code == 400 and bad.json["error"]["field"] == field


# ------------------------------------------------------------------------------------------------ rate limits
def test_reads_are_limited_per_address_with_a_json_429_and_retry_after(tmp_path: Path) -> None:
    client = make(tmp_path, limits={"reads_per_ip": "3/minute"}).test_client()
    assert [client.get("/openapi.json").status_code for _ in range(3)] == [200, 200, 200]
    res = client.get("/openapi.json")
    assert res.status_code == 429 and res.json["error"]["code"] == "too_many_requests"
    assert 0 < int(res.headers["Retry-After"]) <= 60
    assert client.get("/healthz").status_code == 200  # health checks are never limited
    assert client.get("/openapi.json", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200


def test_forwarded_for_is_ignored_unless_proxies_are_declared(tmp_path: Path) -> None:
    client = make(tmp_path, limits={"reads_per_ip": "2/minute"}).test_client()
    spoofed = [client.get("/openapi.json", headers={"X-Forwarded-For": f"198.51.100.{i}"}).status_code
               for i in range(3)]
    assert spoofed == [200, 200, 429]  # a made-up header buys no new budget
    behind = make(tmp_path, limits={"reads_per_ip": "2/minute"}, trusted_proxy_hops=1).test_client()
    got = [behind.get("/openapi.json", headers={"X-Forwarded-For": f"198.51.100.{i % 2}"}).status_code
           for i in range(4)]
    assert got == [200, 200, 200, 200]  # behind a declared proxy each client has its own budget
    assert behind.get("/openapi.json", headers={"X-Forwarded-For": "198.51.100.0"}).status_code == 429


def test_writes_are_limited_per_address(tmp_path: Path) -> None:
    client = make(tmp_path, limits={"writes_per_ip": "2/minute"}).test_client()
    token = issue_token(SECRET, "s", ttl_s=60)
    codes = [post_events(client, [{"product_id": "P1", "event": "purchase"}], token).status_code for _ in range(3)]
    assert codes == [403, 403, 429]


def test_demo_tokens_are_anonymous_by_default_off() -> None:
    assert AuthSettings().demo_tokens is False and AuthSettings().browser_writes == "token"
    grant = verify_token(SECRET, issue_token(SECRET, "demo-1", trust=TRUST_ANONYMOUS))
    assert grant.trust == "anonymous"


def test_a_shoppers_writes_are_limited_per_token_across_addresses(tmp_path: Path) -> None:
    client = make(tmp_path, limits={"writes_per_token": "2/minute"}, trusted_proxy_hops=1).test_client()
    tokens = [issue_token(SECRET, "busy-shopper") for _ in range(3)]  # fresh tokens share the shopper's budget
    codes = [client.post("/v1/events", json={"events": [{"product_id": "P1", "event": "purchase"}]},
                         headers={"Authorization": f"Bearer {t}", "X-Forwarded-For": f"203.0.113.{i}"}).status_code
             for i, t in enumerate(tokens)]
    assert codes == [403, 403, 429]
