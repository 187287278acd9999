"""Settings sections of the trust boundary: who may write events, rate limits, which event times are believable.

Part of the one typed ``Settings`` object (``recommender.config`` imports these sections); kept in their own module
so the security knobs are read in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

BROWSER_WRITE_MODES = ("token", "off")


@dataclass(frozen=True)
class AuthSettings:
    """Who may write: the server key (``Authorization: Bearer``) for the shop's backend, signed shopper tokens for
    the browser.

    ``server_key`` unset = no server writes over HTTP (cart/purchase, other users' events, bulk batches, token
    issuing are refused). ``token_secret`` unset = a random secret generated once into ``token_secret_file``
    (default ``<data_dir>/auth/token-secret``, mode 0600), shared by every worker on the host. ``browser_writes``:
    ``token`` (a valid shopper token, its own id, ``token_events`` only) or ``off`` (browsers write nothing).
    ``demo_tokens``: the ``/demo`` page is issued a token for a fresh demo shopper (trust ``anonymous``).
    """

    server_key: str | None = None
    token_secret: str | None = None
    token_secret_file: Path | None = None
    browser_writes: str = "token"
    token_ttl_s: int = 3600
    max_token_ttl_s: int = 86_400
    token_events: str = "view,click"
    max_token_events: int = 20  # events per request under a token (a page view sends one or two)
    demo_tokens: bool = False


@dataclass(frozen=True)
class LimitSettings:
    """Per-client rate limits (flask-limiter; ``limits`` notation such as ``"60/minute;600/hour"``).

    ``storage_uri``: ``memory://`` keeps counters in each gunicorn worker (a client may get up to workers × the
    limit); ``redis://host:6379`` (or memcached) shares them between workers and hosts. Requests with the server
    key are not limited; ``/healthz``, ``/readyz``, ``/metrics`` and the widget asset never are.
    """

    enabled: bool = True
    storage_uri: str = "memory://"
    reads_per_ip: str = "600/minute"  # product pages, products, images, demo pages
    queries_per_ip: str = "60/minute"  # search and ask: each costs an encoder pass
    writes_per_ip: str = "120/minute"
    writes_per_token: str = "30/minute"
    ipv6_prefix: int = 64  # an IPv6 client is its /64: one host usually owns the whole prefix


@dataclass(frozen=True)
class EventTimeSettings:
    """Which event times are believed: on or after ``earliest`` and at most ``max_future_s`` after the server's
    clock; a browser (token) event at most ``max_token_age_s`` old. Anything else is rejected with a reason."""

    earliest: str = "1995-01-01T00:00:00Z"
    max_future_s: int = 300
    max_token_age_s: int = 86_400
