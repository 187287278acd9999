"""The browser tests' shop, built once per session: every browser test module starts its own API over it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from recommender import components
from recommender.config import ImageEncoderSettings, Settings, WeaviateSettings
from recommender.encoders.image import OpenClipImageEncoder
from recommender.encoders.text import SentenceTransformerEncoder
from recommender.store.products import ProductStore
from recommender.vectorize import Vectorizer
from tests.browser_shop import IMAGE_SIZE, require_chromium, shop_catalog
from tests.recsys_data import trained_data_dir


@pytest.fixture(scope="session")
def shop(weaviate_server, tmp_path_factory: pytest.TempPathFactory  # type: ignore[no-untyped-def]
         ) -> Iterator[tuple[WeaviateSettings, Path, Path]]:
    """(weaviate settings, catalog dir, data dir): products vectorized with the ask vocabulary, events imported,
    a model published."""
    require_chromium()
    settings = WeaviateSettings(host=weaviate_server.host, http_port=weaviate_server.http_port,
                                grpc_port=weaviate_server.grpc_port, collection=f"Widget_{uuid.uuid4().hex[:12]}")
    catalog = shop_catalog(tmp_path_factory.mktemp("shop"))
    data_dir = tmp_path_factory.mktemp("shop-data")
    trained_data_dir(data_dir, catalog)
    with ProductStore.open(settings) as store:
        Vectorizer(store, SentenceTransformerEncoder(Settings().text_encoder),
                   OpenClipImageEncoder(ImageEncoderSettings(image_size=IMAGE_SIZE)), Settings().vectorize,
                   progress=False).run(catalog)
        components.write_vocabulary(Settings(data_dir=data_dir, weaviate=settings), catalog)
        try:
            yield settings, catalog, data_dir
        finally:
            store.drop()
