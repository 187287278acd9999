"""Connecting to Weaviate (one node, or the first answering node of a cluster) and mapping its client's exceptions
to StoreError / StoreUnavailable."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse

import weaviate
from weaviate.classes.init import AdditionalConfig, Timeout
from weaviate.exceptions import WeaviateBaseError

from recommender.config import WeaviateSettings
from recommender.errors import StoreError, StoreUnavailable


@dataclass(frozen=True)
class Endpoint:
    """One node's HTTP and gRPC addresses."""

    http_host: str
    http_port: int
    grpc_host: str
    grpc_port: int
    secure: bool = False

    @property
    def url(self) -> str:
        """Its HTTP base URL."""
        return f"{'https' if self.secure else 'http'}://{self.http_host}:{self.http_port}"


def endpoints(settings: WeaviateSettings) -> list[Endpoint]:
    """Every node the client may use, in order: the ``url`` list (with the ``grpc_url`` list beside it), else the
    ``nodes`` local nodes on consecutive ports."""
    if not settings.url:
        return [Endpoint(settings.host, settings.http_port + i, settings.host, settings.grpc_port + i)
                for i in range(max(1, settings.nodes))]
    urls = [u.strip() for u in settings.url.split(",") if u.strip()]
    grpcs = [g.strip() for g in (settings.grpc_url or "").split(",") if g.strip()]
    if grpcs and len(grpcs) != len(urls):
        raise StoreError(f"weaviate.grpc_url lists {len(grpcs)} addresses for {len(urls)} weaviate.url nodes")
    out = []
    for i, text in enumerate(urls):
        http = urlparse(text)
        secure = http.scheme == "https"
        grpc = urlparse(grpcs[i] if grpcs and "//" in grpcs[i] else f"//{grpcs[i] if grpcs else ''}")
        host = http.hostname or "localhost"
        out.append(Endpoint(host, http.port or (443 if secure else 80), grpc.hostname or host,
                            grpc.port or (443 if secure and grpcs else 50051), secure))
    return out


def connect(settings: WeaviateSettings, first: int = 0, read_timeout_s: float = 30.0
            ) -> tuple[weaviate.WeaviateClient, int]:
    """A connected client to the first node, starting at index ``first`` and wrapping round, that answers its
    readiness probe within ``connect_timeout_s``, and that node's index. With one node, it is used as is."""
    nodes = endpoints(settings)
    problems = []
    for step in range(len(nodes)):
        index = (first + step) % len(nodes)
        try:
            client = _connect(nodes[index], settings, read_timeout_s)
        except WeaviateBaseError as exc:
            problems.append(f"{nodes[index].url}: {exc}")
            continue
        if len(nodes) == 1 or _ready(client):
            return client, index
        client.close()
        problems.append(f"{nodes[index].url}: not ready")
    raise StoreUnavailable(f"cannot reach Weaviate at {'; '.join(problems)}")


def _connect(node: Endpoint, settings: WeaviateSettings, read_timeout_s: float) -> weaviate.WeaviateClient:
    auth = weaviate.auth.AuthApiKey(settings.api_key) if settings.api_key else None
    # bounded: a node that went away must not hold a call for the client's default 90 s
    timeout = Timeout(init=settings.connect_timeout_s, query=read_timeout_s, insert=max(read_timeout_s, 30.0))
    # skip_init_checks: the client would otherwise ask the internet (PyPI) for its latest version.
    return weaviate.connect_to_custom(
        http_host=node.http_host, http_port=node.http_port, http_secure=node.secure, grpc_host=node.grpc_host,
        grpc_port=node.grpc_port, grpc_secure=node.secure, auth_credentials=auth, skip_init_checks=True,
        additional_config=AdditionalConfig(timeout=timeout),
    )


def _ready(client: weaviate.WeaviateClient) -> bool:
    try:
        return bool(client.is_ready())
    except (WeaviateBaseError, ConnectionError, OSError):
        return False


class _errors:
    """Map client exceptions to StoreError / StoreUnavailable with what we were doing."""

    def __init__(self, action: str) -> None:
        self.action = action

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if isinstance(exc, WeaviateBaseError | ConnectionError | OSError) and not isinstance(exc, StoreError):
            cls = StoreUnavailable if looks_unreachable(exc) else StoreError
            raise cls(f"Weaviate: could not {self.action}: {exc}") from exc


_UNREACHABLE_WORDS = ("connect", "unavailable", "refused", "timeout", "timed out", "closed", "replica", "broadcast",
                      "deadline", "rst_stream")


def looks_unreachable(exc: BaseException | str) -> bool:
    """True when an error (or error message, or an error it was raised from) says a node or replica could not be
    reached, or did not answer in time, rather than that the request was wrong."""
    if isinstance(exc, str):
        return any(w in exc.lower() for w in _UNREACHABLE_WORDS)
    seen: BaseException | None = exc
    for _ in range(5):  # the client wraps the gRPC error; its status says more than the wrapper's message
        if seen is None:
            return False
        if looks_unreachable(f"{type(seen).__name__} {seen}"):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
