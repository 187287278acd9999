"""Signed shopper tokens: what lets a browser write events for one shopper id (and optionally one session).

A token is a JWT (RFC 7519, HS256, PyJWT) signed with the deployment's token secret and issued by the shop's
backend: over ``POST /v1/tokens`` with the server key, with ``recsys token``, by calling ``issue_token``, or with
any JWT library in the shop's own language (claims below), since the format is a standard. It is short-lived
(``exp``) and addressed to this service (``aud``); the API reads the shopper id from it and never from the body.
Claims: ``sub`` shopper id, ``sid`` session id (optional), ``trust`` ``shopper`` | ``anonymous``, ``jti``
the token's own id (its rate-limit key), ``iat``, ``exp``, ``aud`` = ``recsys:events``.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt

from recommender.errors import RecommenderError
from recommender.trust_settings import AuthSettings

AUDIENCE = "recsys:events"
ALGORITHM = "HS256"
TRUST_SERVER = "server"  # the shop's backend (server key) or a file import
TRUST_SHOPPER = "shopper"  # a token the shop's backend issued
TRUST_ANONYMOUS = "anonymous"  # a token nobody vouched for (the demo page's)
TRUST_LEVELS = (TRUST_SERVER, TRUST_SHOPPER, TRUST_ANONYMOUS)
MIN_SECRET_CHARS = 32  # HS256 wants a key of at least 256 bits
_LEEWAY_S = 5


class TokenInvalid(RecommenderError):
    """A shopper token that cannot be used: malformed, badly signed, expired, for another audience."""


@dataclass(frozen=True)
class ShopperToken:
    """What a verified token allows: events for ``user_id`` (and ``session_id`` when set) until ``expires_at``."""

    user_id: str
    session_id: str | None
    trust: str
    token_id: str
    expires_at: datetime


def issue_token(secret: str, user_id: str, *, session_id: str | None = None, ttl_s: int = 3600,
                trust: str = TRUST_SHOPPER, now: datetime | None = None) -> str:
    """A signed token for one shopper id (and session), valid ``ttl_s`` seconds from ``now``."""
    if not user_id or trust not in (TRUST_SHOPPER, TRUST_ANONYMOUS) or ttl_s <= 0:
        raise ValueError("a token needs a user id, a positive lifetime and trust shopper or anonymous")
    now = now or datetime.now(UTC)
    claims: dict[str, object] = {"sub": user_id, "aud": AUDIENCE, "trust": trust, "jti": secrets.token_urlsafe(12),
                                 "iat": int(now.timestamp()), "exp": int((now + timedelta(seconds=ttl_s)).timestamp())}
    if session_id:
        claims["sid"] = session_id
    return jwt.encode(claims, _key(secret), algorithm=ALGORITHM)


def verify_token(secret: str, token: str, now: datetime | None = None) -> ShopperToken:
    """The token's grant, or TokenInvalid saying why (only HS256 is accepted: no ``none``, no key confusion)."""
    options: Any = {"require": ["sub", "exp", "iat", "aud", "jti"]}
    try:
        if now is None:
            claims = jwt.decode(token, _key(secret), algorithms=[ALGORITHM], audience=AUDIENCE, options=options,
                                leeway=_LEEWAY_S)
        else:  # a caller's clock (tests): check the expiry against it instead of the wall clock
            claims = jwt.decode(token, _key(secret), algorithms=[ALGORITHM], audience=AUDIENCE,
                                options={**options, "verify_exp": False, "verify_iat": False})
            if claims["exp"] + _LEEWAY_S < now.timestamp():
                raise jwt.ExpiredSignatureError("Signature has expired")
    except jwt.ExpiredSignatureError as exc:
        raise TokenInvalid("the shopper token has expired") from exc
    except jwt.PyJWTError as exc:
        raise TokenInvalid(f"invalid shopper token: {exc}") from exc
    trust, sub, sid = claims.get("trust", TRUST_SHOPPER), claims["sub"], claims.get("sid")
    if trust not in (TRUST_SHOPPER, TRUST_ANONYMOUS) or not isinstance(sub, str) or not sub:
        raise TokenInvalid("invalid shopper token: bad trust or subject claim")
    if sid is not None and not isinstance(sid, str):
        raise TokenInvalid("invalid shopper token: bad sid claim")
    return ShopperToken(sub, sid or None, trust, str(claims["jti"]), datetime.fromtimestamp(claims["exp"], UTC))


def _key(secret: str) -> bytes:
    if len(secret) < MIN_SECRET_CHARS:
        raise TokenInvalid(f"the token secret must have at least {MIN_SECRET_CHARS} characters")
    return secret.encode("utf-8")


def token_secret(auth: AuthSettings, data_dir: Path) -> str:
    """The configured secret, else one generated once into the secret file (0600) that every worker then reads."""
    if auth.token_secret:
        if len(auth.token_secret) < MIN_SECRET_CHARS:
            raise TokenInvalid(f"auth.token_secret must have at least {MIN_SECRET_CHARS} characters")
        return auth.token_secret
    path = auth.token_secret_file or data_dir / "auth" / "token-secret"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # one creator wins; the others read it
    except FileExistsError:
        return _read_secret(path)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(secrets.token_urlsafe(48))
    return _read_secret(path)


def _read_secret(path: Path) -> str:
    for _ in range(50):  # a worker racing the creator may see the file before its one write
        text = path.read_text(encoding="utf-8").strip()
        if len(text) >= MIN_SECRET_CHARS:
            return text
        time.sleep(0.01)
    raise TokenInvalid(f"the token secret file {path} is empty or too short")
