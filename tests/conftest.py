"""Shared fixtures: hermetic paths and environment for every test, and one real Weaviate per session."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from recommender.config import Settings, load_settings
from recommender.errors import ConfigError, WeaviateServerError
from recommender.store.ports import free_ports
from recommender.store.server import INSTALL_HINT, LocalWeaviate


def _resolve_real_binary() -> Path:
    """The Weaviate binary from the real settings, computed once before any test touches the env."""
    try:
        return load_settings().weaviate_binary
    except ConfigError:
        return Settings().weaviate_binary


# Resolved at import time, i.e. before any monkeypatching: the binary lives in the real cache dir.
WEAVIATE_BINARY = _resolve_real_binary()

# Variables that would point tests at a user's own config or server instead of the test one.
_SCRUBBED_ENV = ("RECSYS_CONFIG", "WEAVIATE_URL", "WEAVIATE_GRPC_URL", "WEAVIATE_API_KEY")


@pytest.fixture(autouse=True)
def _hermetic_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test: data dir under tmp, no network for model hubs, no user config leaking in."""
    for name in list(os.environ):
        if name in _SCRUBBED_ENV or (name.startswith("RECSYS_") and "__" in name):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RECSYS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


@dataclass(frozen=True)
class WeaviateEndpoint:
    """Where the session's test Weaviate listens, plus the process handle."""

    host: str
    http_port: int
    grpc_port: int
    server: LocalWeaviate

    @property
    def url(self) -> str:
        """Base HTTP URL, e.g. ``http://127.0.0.1:41234``."""
        return self.server.url

    @property
    def grpc_url(self) -> str:
        """``host:port`` of the gRPC endpoint (the form ``WEAVIATE_GRPC_URL`` takes)."""
        return f"{self.host}:{self.grpc_port}"


def missing_binary(binary: Path = WEAVIATE_BINARY) -> None:
    """Fail (in CI) or skip (locally) because the Weaviate binary is not installed."""
    message = f"Weaviate server binary not found at {binary}; {INSTALL_HINT}"
    if os.environ.get("CI"):
        pytest.fail(message + " (integration tests are never skipped in CI)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def weaviate_binary() -> Path:
    """Path of the real Weaviate binary (skip/fail when it is not installed)."""
    if not WEAVIATE_BINARY.is_file():
        missing_binary()
    return WEAVIATE_BINARY


@pytest.fixture(scope="session")
def weaviate_server(weaviate_binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WeaviateEndpoint]:
    """One real Weaviate for the whole session, on free ports, data in a session temp dir."""
    root = tmp_path_factory.mktemp("weaviate")
    host = "127.0.0.1"
    http_port, grpc_port = free_ports(2, host)
    server = LocalWeaviate(
        binary=weaviate_binary,
        data_dir=root / "data",
        host=host,
        http_port=http_port,
        grpc_port=grpc_port,
        startup_timeout_s=120.0,
        log_path=root / "weaviate.log",
    )
    try:
        server.start()
    except WeaviateServerError as exc:
        pytest.fail(f"could not start the test Weaviate: {exc}", pytrace=False)
    try:
        yield WeaviateEndpoint(host=host, http_port=server.http_port, grpc_port=server.grpc_port, server=server)
    finally:
        server.stop()


@pytest.fixture
def weaviate_collection_name() -> str:
    """A collection name unique to this test, so tests sharing the server never collide."""
    return f"Product_{uuid.uuid4().hex[:12]}"
