"""Who may write: the server key (the shop's backend) or a shopper token (the browser), and ``POST /v1/tokens``.

- ``Authorization: Bearer <server key>`` (``auth.server_key``, compared in constant time): any event type, any user,
  batches up to ``api.max_events_per_request``; the only way to write ``cart``/``purchase`` or to import in bulk,
  and the only caller of ``POST /v1/tokens``. Never put it in a page: it belongs to the shop's backend.
- ``Authorization: Bearer <shopper token>`` (``recommender.events.tokens``): only ``auth.token_events`` (view, click)
  for the token's own user (and session, when the token names one), at most ``auth.max_token_events`` per request,
  timestamps no older than ``event_time.max_token_age_s``. ``auth.browser_writes = "off"`` refuses every token.
Anything else is a 401 (no or bad credentials) or a 403 (a token asking for more than it grants).
"""

from __future__ import annotations

import hmac
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request

from api.errors import ApiError
from api.models import TokenBody
from api.responses import TokenResult
from api.schema import Operation, Reply, operation
from recommender.config import Settings
from recommender.events.tokens import TRUST_SERVER, ShopperToken, TokenInvalid, issue_token, token_secret, verify_token
from recommender.events.trust import client_network, origin_of

EXTENSION = "recsys_auth"
HEADER = "Authorization"

bp = Blueprint("tokens", __name__, url_prefix="/v1")


class Auth:
    """One app's credentials: the server key, and the token secret (read or generated on first use)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._secret: str | None = None
        self._lock = threading.Lock()

    def secret(self) -> str:
        """The token secret (``auth.token_secret``, else the generated file shared by the host's workers)."""
        with self._lock:
            if self._secret is None:
                self._secret = token_secret(self.settings.auth, self.settings.data_dir)
            return self._secret

    def is_server_key(self, presented: str) -> bool:
        """Constant-time comparison with the configured server key (False when none is configured)."""
        key = self.settings.auth.server_key
        return key is not None and key != "" and hmac.compare_digest(presented.encode("utf-8"), key.encode("utf-8"))

    def issue(self, user_id: str, session_id: str | None, ttl_s: int, trust: str) -> str:
        """A token signed with this deployment's secret."""
        return issue_token(self.secret(), user_id, session_id=session_id, ttl_s=ttl_s, trust=trust)


@dataclass(frozen=True)
class Writer:
    """Who is writing this request: the server (``token`` None) or one shopper's token."""

    token: ShopperToken | None

    @property
    def trust(self) -> str:
        """The trust level stored with each event written."""
        return TRUST_SERVER if self.token is None else self.token.trust


def init_auth(app: Flask, settings: Settings) -> None:
    """Attach the app's credentials."""
    app.extensions[EXTENSION] = Auth(settings)


def auth() -> Auth:
    """The current app's credentials."""
    found: Auth = current_app.extensions[EXTENSION]
    return found


def bearer() -> str:
    """The bearer credential of this request ('' when none)."""
    scheme, _, value = request.headers.get(HEADER, "").strip().partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def is_server_request() -> bool:
    """True when the request carries the server key (cached per request: the rate limiter asks too)."""
    if "recsys_server" not in g:
        g.recsys_server = auth().is_server_key(bearer())
    return bool(g.recsys_server)


def request_token() -> ShopperToken | None:
    """The request's verified shopper token, or None (no token, or not a valid one); cached per request."""
    if "recsys_token" not in g:
        g.recsys_token = None
        presented = bearer()
        if presented and not is_server_request() and presented.count(".") == 2:
            try:
                g.recsys_token = verify_token(auth().secret(), presented)
            except TokenInvalid as exc:
                g.recsys_token_error = str(exc)
    token: ShopperToken | None = g.recsys_token
    return token


def writer() -> Writer:
    """Who may write this request's events, or 401: no credentials, a bad token, browser writes switched off."""
    if is_server_request():
        return Writer(None)
    if not bearer():
        raise ApiError(401, "unauthorized", "events need `Authorization: Bearer <shopper token or server key>`",
                       HEADER)
    if auth().settings.auth.browser_writes != "token":
        raise ApiError(401, "unauthorized", "browser writes are switched off (auth.browser_writes = off): "
                                            "send events from the shop's backend with the server key", HEADER)
    token = request_token()
    if token is None:
        reason = g.get("recsys_token_error", "not the server key and not a shopper token")
        raise ApiError(401, "unauthorized", reason, HEADER)
    return Writer(token)


def admit_token_events(raw: list[Any], token: ShopperToken) -> list[Any]:
    """The batch with the token's user (and session) filled in, or 403/413 when it asks for more than the token
    grants: another user or session, an event type beyond ``auth.token_events``, too many events."""
    settings = auth().settings.auth
    if len(raw) > settings.max_token_events:
        raise ApiError(413, "too_large", f"at most {settings.max_token_events} events per request with a shopper "
                                         f"token, got {len(raw)}", "events")
    allowed = {k.strip() for k in settings.token_events.split(",") if k.strip()}
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            out.append(item)  # reported as malformed by the validation
            continue
        _grant(item, i, "user_id", token.user_id)
        if token.session_id is not None:
            _grant(item, i, "session_id", token.session_id)
        kind = str(item.get("event") or "").strip().lower()
        if kind not in allowed:
            raise ApiError(403, "forbidden", f"a shopper token may write {', '.join(sorted(allowed))} events; "
                                             f"{kind or 'this event'} needs the server key", f"events[{i}].event")
        out.append({**item, "user_id": token.user_id, **({"session_id": token.session_id}
                                                          if token.session_id is not None else {})})
    return out


def _grant(item: dict[str, Any], index: int, name: str, granted: str) -> None:
    value = item.get(name)
    if value is not None and (not isinstance(value, str) or value.strip() != granted):
        raise ApiError(403, "forbidden", f"the shopper token is for {name} {granted!r}, not this one",
                       f"events[{index}].{name}")


def origin(token: ShopperToken | None) -> str:
    """The keyed hash of the client's network for browser writes ('' for the server's)."""
    if token is None:
        return ""
    network = client_network(request.remote_addr or "", auth().settings.limits.ipv6_prefix)
    return origin_of(network, auth().secret())


def require_writer() -> None:
    """``Operation.before`` of event writes: 401 before any input is read (``writer`` caches its answer)."""
    writer()


def require_server() -> None:
    """``Operation.before`` of the server-only routes: 401 unless the request carries the server key."""
    if not is_server_request():
        raise ApiError(401, "unauthorized", "issuing tokens needs `Authorization: Bearer <server key>`", HEADER)


@bp.post("/tokens")
@operation(Operation(
    "Issue a short-lived shopper token for one user (and session): the shop's backend, with the server key",
    json=TokenBody, secured=True, before=require_server, store=False,
    responses={200: Reply("the token", (TokenResult,))}))
def post_token(body: TokenBody) -> tuple[Response, int]:
    """Issue a shopper token (server key only): ``{"user_id", "session_id"?, "ttl_s"?}``."""
    settings = auth().settings.auth
    ttl = settings.token_ttl_s if body.ttl_s is None else body.ttl_s
    if not 0 < ttl <= settings.max_token_ttl_s:
        raise ApiError(400, "invalid_request", f"ttl_s must be an integer in 1..{settings.max_token_ttl_s}", "ttl_s")
    token = auth().issue(body.user_id, body.session_id, ttl, "shopper")
    expires = datetime.fromtimestamp(int(datetime.now(UTC).timestamp()) + ttl, UTC)
    return jsonify({"token": token, "user_id": body.user_id, "session_id": body.session_id, "trust": "shopper",
                    "expires_at": expires.isoformat()}), 200
