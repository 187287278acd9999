"""Facade the jobs and the API call: build components from settings, each given only its own part."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from recommender.config import Settings
from recommender.encoders.image import OpenClipImageEncoder
from recommender.encoders.text import SentenceTransformerEncoder
from recommender.store.products import ProductStore
from recommender.store.server import LocalWeaviate

log = logging.getLogger(__name__)


@contextmanager
def running_weaviate(settings: Settings, autostart: bool = True) -> Iterator[None]:
    """Ensure a Weaviate is reachable: a configured URL is used as is; else the local server is
    reused when ready, or started for the duration of the block (and stopped after) when ``autostart``.
    """
    if settings.weaviate.url:
        yield
        return
    server = LocalWeaviate.from_settings(settings)
    if server.is_ready() or not autostart:
        yield
        return
    log.info("starting local Weaviate on %s", server.url)
    server.start()
    try:
        yield
    finally:
        server.stop()


@contextmanager
def open_store(settings: Settings, autostart: bool = True) -> Iterator[ProductStore]:
    """A connected ProductStore for the configured collection, with Weaviate running meanwhile."""
    with running_weaviate(settings, autostart), ProductStore.open(settings.weaviate) as store:
        yield store


def text_encoder(settings: Settings) -> SentenceTransformerEncoder:
    """The configured text encoder (loads lazily)."""
    return SentenceTransformerEncoder(settings.text_encoder)


def image_encoder_dir(settings: Settings) -> Path:
    """Where `recsys train-image-encoder` publishes checkpoints (``current`` = the one in use)."""
    return settings.data_dir / "models" / "image-encoder"


def image_encoder(settings: Settings) -> OpenClipImageEncoder:
    """The configured image encoder (loads lazily): a configured checkpoint or pretrained model, else the
    trained checkpoint ``<data_dir>/models/image-encoder/current`` when there is one, else random init."""
    s = settings.image_encoder
    current = image_encoder_dir(settings) / "current"
    if s.checkpoint is None and s.pretrained is None and current.exists():
        s = replace(s, checkpoint=current)
    return OpenClipImageEncoder(s, text_encoder=text_encoder(settings).identity)
