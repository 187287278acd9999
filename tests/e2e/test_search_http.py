"""The API under a real gunicorn process on loopback: a search over HTTP, and readiness when Weaviate is gone."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from recommender.config import ImageEncoderSettings, Settings, WeaviateSettings
from recommender.encoders.image import OpenClipImageEncoder
from recommender.encoders.text import SentenceTransformerEncoder
from recommender.store.ports import free_port
from recommender.store.products import ProductStore
from recommender.vectorize import Vectorizer
from tests.catalogs import small_catalog
from tests.gunicorn_server import gunicorn as serve

pytestmark = pytest.mark.integration

IMAGE_SIZE = 64


@pytest.fixture(scope="module")
def small_weaviate(weaviate_server, tmp_path_factory: pytest.TempPathFactory  # type: ignore[no-untyped-def]
                   ) -> Iterator[WeaviateSettings]:
    """A collection holding the first 40 fixture products, vectorized by the real encoders."""
    settings = WeaviateSettings(host=weaviate_server.host, http_port=weaviate_server.http_port,
                                grpc_port=weaviate_server.grpc_port, collection=f"E2E_{uuid.uuid4().hex[:12]}")
    catalog = small_catalog(tmp_path_factory.mktemp("catalog"), 40)
    with ProductStore.open(settings) as store:
        Vectorizer(store, SentenceTransformerEncoder(Settings().text_encoder),
                   OpenClipImageEncoder(ImageEncoderSettings(image_size=IMAGE_SIZE)), Settings().vectorize,
                   progress=False).run(catalog)
        try:
            yield settings
        finally:
            store.drop()


def call(url: str, body: dict[str, Any] | None = None, timeout: float = 60.0) -> tuple[int, str, dict[str, Any]]:
    """(status, content type, JSON body) of a GET (or a JSON POST when body is given); HTTP errors included."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.headers.get_content_type(), json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get_content_type(), json.loads(exc.read())


def gunicorn(weaviate: WeaviateSettings, log: Path) -> AbstractContextManager[str]:
    """The API under gunicorn, pointed at ``weaviate``."""
    return serve({"RECSYS_WEAVIATE__HOST": weaviate.host, "RECSYS_WEAVIATE__HTTP_PORT": str(weaviate.http_port),
                  "RECSYS_WEAVIATE__GRPC_PORT": str(weaviate.grpc_port),
                  "RECSYS_WEAVIATE__COLLECTION": weaviate.collection,
                  "RECSYS_IMAGE_ENCODER__IMAGE_SIZE": str(IMAGE_SIZE)}, log)


def test_search_over_http_under_gunicorn(small_weaviate: WeaviateSettings, tmp_path: Path) -> None:
    with gunicorn(small_weaviate, tmp_path / "gunicorn.log") as base:
        assert call(f"{base}/readyz")[:2] == (200, "application/json")
        status, ctype, body = call(f"{base}/v1/search", {"text": "yellow jeans", "k": 3})
        assert (status, ctype) == (200, "application/json"), body
        assert body["results"][0]["product_id"] == "P00003"  # the only yellow jeans among the first 40
        assert set(body["results"][0]["scores"]) == {"text->text", "text->image"}
        status, _, body = call(f"{base}/v1/search", {"text": "jeans", "k": 500})
        assert status == 400 and body["error"]["field"] == "k"


def test_readyz_is_503_json_when_weaviate_is_unreachable(tmp_path: Path) -> None:
    closed = WeaviateSettings(host="127.0.0.1", http_port=free_port("127.0.0.1"),
                              grpc_port=free_port("127.0.0.1"), collection="Nowhere")
    with gunicorn(closed, tmp_path / "gunicorn.log") as base:
        assert call(f"{base}/healthz") == (200, "application/json", {"status": "ok"})
        status, ctype, body = call(f"{base}/readyz")
        assert (status, ctype) == (503, "application/json")
        assert body["error"]["code"] == "store_unavailable"
        status, ctype, body = call(f"{base}/v1/search", {"text": "jeans"})
        assert (status, ctype, body["error"]["code"]) == (503, "application/json", "store_unavailable")
