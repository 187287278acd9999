"""Integration fixtures shared across modules: the real encoders (loaded once per session) and the fixture
catalog vectorized ONCE per session into its own collection on the session's Weaviate; a throwaway PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from recommender.config import ImageEncoderSettings, Settings, WeaviateSettings
from recommender.encoders.image import OpenClipImageEncoder
from recommender.encoders.text import SentenceTransformerEncoder
from recommender.errors import WeaviateServerError
from recommender.store.cluster import LocalCluster
from recommender.store.ports import free_port_runs
from recommender.store.products import ProductStore
from recommender.vectorize import Vectorizer
from tests.postgres_server import SEARCHED, PostgresServer, bindir, postgres_server

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "fixtures"
IMAGE_SIZE = 64  # the untrained tower at 64 px keeps the suite fast; the code path is the real one


@pytest.fixture(scope="session")
def text_encoder() -> SentenceTransformerEncoder:
    """The real default text encoder (all-MiniLM-L6-v2), loaded once."""
    return SentenceTransformerEncoder(Settings().text_encoder)


@pytest.fixture(scope="session")
def image_encoder() -> OpenClipImageEncoder:
    """The real open_clip tower, untrained (seeded), at IMAGE_SIZE px."""
    return OpenClipImageEncoder(ImageEncoderSettings(image_size=IMAGE_SIZE))


@pytest.fixture(scope="session")
def fixtures_weaviate(weaviate_server, text_encoder: SentenceTransformerEncoder,  # type: ignore[no-untyped-def]
                      image_encoder: OpenClipImageEncoder) -> Iterator[WeaviateSettings]:
    """Weaviate settings of a collection holding the whole fixture catalog, vectorized once per session.

    Read-only for tests: a test that writes makes its own collection.
    """
    settings = WeaviateSettings(host=weaviate_server.host, http_port=weaviate_server.http_port,
                                grpc_port=weaviate_server.grpc_port,
                                collection=f"Fixtures_{uuid.uuid4().hex[:12]}")
    with ProductStore.open(settings) as store:
        summary = Vectorizer(store, text_encoder, image_encoder, Settings().vectorize, progress=False).run(FIXTURES)
        assert summary.written > 0 and summary.invalid == 0, summary
        try:
            yield settings
        finally:
            store.drop()


@pytest.fixture(scope="session")
def weaviate_cluster(weaviate_binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A real 3-node local Weaviate cluster (same binary, loopback, free ports), started once per session when a
    test asks for it. A test that stops a node restarts it before it ends."""
    for attempt in range(3):
        http_port, grpc_port = free_port_runs(2, length=3)
        cluster = LocalCluster(weaviate_binary, tmp_path_factory.mktemp("weaviate-cluster"), nodes=3,
                               http_port=http_port, grpc_port=grpc_port, startup_timeout_s=180.0)
        try:
            cluster.start()
            break
        except WeaviateServerError as exc:
            cluster.stop()
            # a free port can be taken by another process before a node binds it (a busy machine): new ports
            if "address already in use" not in str(exc) or attempt == 2:
                pytest.fail(f"could not start the test Weaviate cluster: {exc}", pytrace=False)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL server for the session (skipped locally, failed in CI, when PostgreSQL is missing)."""
    bins = bindir()
    if bins is None:
        message = f"PostgreSQL server binaries not found ({SEARCHED}); apt-get install postgresql"
        if os.environ.get("CI"):
            pytest.fail(message + " (integration tests are never skipped in CI)", pytrace=False)
        pytest.skip(message)
    with postgres_server(bins) as server:
        yield server


@pytest.fixture
def postgres_url(postgres: PostgresServer) -> str:
    """URL of a fresh, empty database on the session's PostgreSQL."""
    return postgres.create_database(f"events_{uuid.uuid4().hex[:12]}")
