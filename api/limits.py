"""Rate limits per client address and per shopper token (flask-limiter), and which address is the client's.

Every request is limited per client network (an IPv4 address, an IPv6 /64): reads generously
(``limits.reads_per_ip``), search and ask tighter (``queries_per_ip``: each costs an encoder pass), event writes and
token requests tighter still (``writes_per_ip``), and events under a shopper token also per shopper
(``writes_per_token``, keyed by the token's user id, so fresh tokens for one shopper share one budget). Requests with
the server key, health checks, metrics and the widget script are not limited. Over a limit: a 429 JSON error with
``Retry-After``. The client address is the TCP peer's; ``X-Forwarded-For`` is believed only for the
``api.trusted_proxy_hops`` proxies the deployment declares (werkzeug's ProxyFix), never by default.
``limits.storage_uri = "memory://"`` counts per gunicorn worker; a shared store (``redis://…``) counts per service.
"""

from __future__ import annotations

from flask import Flask, Response, request
from flask_limiter import Limiter, RateLimitExceeded
from werkzeug.middleware.proxy_fix import ProxyFix

from api import ask, events, health, metrics, search, widget
from api.auth import bp as tokens_bp
from api.auth import is_server_request, request_token
from api.errors import error_response
from recommender.config import Settings
from recommender.events.trust import client_network

EXTENSION = "recsys_limiter"


def init_limits(app: Flask, settings: Settings) -> None:
    """Install the client-address rule and the rate limits of ``[limits]``."""
    if settings.api.trusted_proxy_hops > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.api.trusted_proxy_hops)  # type: ignore[method-assign]
    cfg = settings.limits
    prefix = cfg.ipv6_prefix

    def by_network() -> str:
        return "ip:" + client_network(request.remote_addr or "", prefix)

    def by_shopper() -> str:
        token = request_token()
        return f"shopper:{token.user_id}" if token is not None else by_network()

    limiter = Limiter(by_network, app=app, default_limits=[cfg.reads_per_ip], storage_uri=cfg.storage_uri,
                      strategy="moving-window", headers_enabled=True, enabled=cfg.enabled, key_prefix="recsys")
    limiter.request_filter(is_server_request)
    for bp in (health.bp, metrics.bp):
        limiter.exempt(bp)
    limiter.exempt(widget.asset)
    for bp in (search.bp, ask.bp):
        limiter.limit(cfg.queries_per_ip)(bp)
    limiter.limit(cfg.writes_per_ip)(tokens_bp)
    limiter.limit(cfg.writes_per_ip)(events.bp)
    limiter.limit(cfg.writes_per_token, key_func=by_shopper, exempt_when=lambda: request_token() is None)(events.bp)
    app.extensions[EXTENSION] = limiter

    @app.errorhandler(RateLimitExceeded)
    def _too_many(exc: RateLimitExceeded) -> tuple[Response, int]:
        return error_response(429, "too_many_requests", f"rate limit exceeded ({exc.description}); retry after "
                                                        "the Retry-After header's seconds")
