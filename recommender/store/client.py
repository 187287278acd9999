"""Connecting to Weaviate and mapping its client's exceptions to StoreError / StoreUnavailable."""

from __future__ import annotations

from urllib.parse import urlparse

import weaviate
from weaviate.exceptions import WeaviateBaseError

from recommender.config import WeaviateSettings
from recommender.errors import StoreError, StoreUnavailable


def connect(settings: WeaviateSettings) -> weaviate.WeaviateClient:
    """A connected client: to ``settings.url`` when set, else to the local server on host/ports."""
    try:
        if settings.url:
            return _connect_url(settings)
        # skip_init_checks: the client would otherwise ask the internet (PyPI) for its latest version.
        return weaviate.connect_to_local(host=settings.host, port=settings.http_port,
                                         grpc_port=settings.grpc_port, skip_init_checks=True)
    except WeaviateBaseError as exc:
        where = settings.url or f"http://{settings.host}:{settings.http_port}"
        raise StoreUnavailable(f"cannot reach Weaviate at {where}: {exc}") from exc


def _connect_url(settings: WeaviateSettings) -> weaviate.WeaviateClient:
    http = urlparse(str(settings.url))
    secure = http.scheme == "https"
    grpc_text = settings.grpc_url or ""
    grpc = urlparse(grpc_text if "//" in grpc_text else f"//{grpc_text}")
    auth = weaviate.auth.AuthApiKey(settings.api_key) if settings.api_key else None
    return weaviate.connect_to_custom(
        http_host=http.hostname or "localhost", http_port=http.port or (443 if secure else 80),
        http_secure=secure, grpc_host=grpc.hostname or http.hostname or "localhost",
        grpc_port=grpc.port or (443 if secure and settings.grpc_url else 50051),
        grpc_secure=secure, auth_credentials=auth, skip_init_checks=True,
    )


class _errors:
    """Map client exceptions to StoreError / StoreUnavailable with what we were doing."""

    def __init__(self, action: str) -> None:
        self.action = action

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if isinstance(exc, WeaviateBaseError | ConnectionError | OSError) and not isinstance(exc, StoreError):
            cls = StoreUnavailable if _looks_unreachable(exc) else StoreError
            raise cls(f"Weaviate: could not {self.action}: {exc}") from exc


def _looks_unreachable(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    return any(w in text for w in ("connect", "unavailable", "refused", "timeout", "timed out", "closed"))
