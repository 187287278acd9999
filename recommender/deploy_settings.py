"""Settings sections of the deployment: where the vector store and the event log are (one node or a cluster,
SQLite or PostgreSQL) and how each serving worker keeps its threads.

Part of the one typed ``Settings`` object (``recommender.config`` imports these sections and is still the only
place that reads them from the environment or the TOML file); kept apart so ``config`` stays small.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from recommender.errors import ConfigError

WEAVIATE_VERSION = "v1.35.2"
_CHOICES = {f"{rw}_consistency": ("ONE", "QUORUM", "ALL") for rw in ("read", "write")} | {
    f"compression_{v}": ("none", "rq", "pq", "bq", "sq") for v in ("text", "image", "behavior")}

@dataclass(frozen=True)
class WeaviateSettings:
    """Where the store is (a server, a cluster's nodes, local nodes), its layout, and how a lost node is ridden out."""

    url: str | None = None  # one URL, or a comma-separated list of node URLs
    grpc_url: str | None = None
    api_key: str | None = None
    host: str = "127.0.0.1"
    http_port: int = 8080
    grpc_port: int = 50051
    nodes: int = 1  # local nodes `recsys weaviate start` runs (and the client fails over between)
    version: str = WEAVIATE_VERSION
    binary: Path | None = None
    startup_timeout_s: float = 90.0
    collection: str = "Product"
    query_timeout_s: float = 5.0  # a read slower than this is reported as Weaviate unavailable (0 = no limit)
    job_timeout_s: float = 30.0  # batch jobs ride out a busy store: a longer deadline per read, and idempotent
    job_retries: int = 2  # reads and writes retried with backoff...
    retry_window_s: float = 0.0  # ... for at least this long (on a cluster: above its failure-detection time)
    connect_timeout_s: float = 2.0  # the most one node may take to answer its readiness probe on connect
    shards: int = 0  # layout, applied when the collection is created; 0 = Weaviate's default (one per node)
    replication_factor: int = 1
    async_replication: bool = False  # background repair of replicas that missed writes (a restarted node)
    read_consistency: str = "QUORUM"  # ONE | QUORUM | ALL replicas that must answer a read
    write_consistency: str = "QUORUM"  # ... acknowledge a write
    compression_text: str = "none"  # per named vector: none | rq (8-bit rotational) | pq | bq (1 bit) | sq (8-bit)
    compression_image: str = "none"
    compression_behavior: str = "none"
    compression_training_limit: int = 100_000  # vectors PQ/SQ train on before they compress (Weaviate's default)

    def __post_init__(self) -> None:
        bad = [f"{n}: {getattr(self, n)!r} is not one of {', '.join(c)}" for n, c in _CHOICES.items()
               if str(getattr(self, n)).lower() not in {v.lower() for v in c}]
        if bad:
            raise ConfigError("; ".join(f"setting weaviate.{b}" for b in bad))


@dataclass(frozen=True)
class EventsSettings:
    """Where the event log is: unset = SQLite at ``<data_dir>/events.sqlite3``; ``sqlite:///PATH``; or
    ``postgresql://…`` (shared by every API host; ``pool_size`` connections per process at most)."""

    url: str | None = None
    pool_size: int = 4
    connect_timeout_s: float = 5.0  # a connection (or a free pooled one) waited for at most this long


@dataclass(frozen=True)
class ServeSettings:
    """How each gunicorn worker keeps its threads for complete requests (``api.worker``, ``api.image_slots``):
    a request's head and body are read by the worker's event loop within their deadlines before any thread takes
    it; one client address holds at most ``max_inflight_per_ip`` of a worker's queued or running requests; image
    work (search/ask photos) runs in ``image_slots`` per worker with ``image_queue`` more waiting up to
    ``image_wait_s`` (the rest answer 503); ``/healthz`` and ``/readyz`` run on ``probe_threads`` of their own; a
    kept-alive connection carries at most ``keepalive_requests`` requests (0: no limit), the last one answered with
    ``Connection: close``, so a client's long-lived connections are spread again over the workers."""

    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    max_inflight_per_ip: int = 6
    image_slots: int = 1
    image_queue: int = 2
    image_wait_s: float = 5.0
    probe_threads: int = 2
    keepalive_requests: int = 100

    def __post_init__(self) -> None:
        if min(self.max_inflight_per_ip, self.image_slots, self.probe_threads) < 1 or \
                min(self.image_queue, self.keepalive_requests) < 0:
            raise ConfigError("serve: max_inflight_per_ip, image_slots and probe_threads must be ≥ 1, image_queue "
                              "and keepalive_requests ≥ 0")
        if min(self.header_timeout_s, self.body_timeout_s, self.image_wait_s) <= 0:
            raise ConfigError("serve: the timeouts must be > 0")
