"""Facade the jobs and the API call: build components from settings, each given only its own part."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recommender.config import Settings
from recommender.encoders.image import OpenClipImageEncoder
from recommender.encoders.text import SentenceTransformerEncoder
from recommender.store.products import ProductStore
from recommender.store.server import LocalWeaviate

if TYPE_CHECKING:
    from recommender.evaluation.offline import EvaluateOptions
    from recommender.evaluation.search_eval import SearchEvalOptions
    from recommender.refresh.pipeline import RefreshOptions, RefreshSummary
    from recommender.refresh.train import TrainOptions, TrainSummary
    from recommender.vectorize import Vectorizer

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


# The jobs' pipelines, wired to the configured store and encoders. Imported inside each function: the API
# imports this module and never runs a job.

def train_behaviour(options: TrainOptions, settings: Settings) -> TrainSummary:
    """`recsys train` (``recommender.refresh.train``) against the configured store."""
    from recommender.refresh.train import train_behaviour as run

    return run(options, settings, lambda: open_store(settings))


def vectorizer(settings: Settings, store: ProductStore, progress: bool = True) -> Vectorizer:
    """The vectorize pipeline for the configured encoders (the image tower's hubness correction included)."""
    from recommender.vectorize import Vectorizer

    image = image_encoder(settings)
    return Vectorizer(store, text_encoder(settings), image, settings.vectorize, progress=progress,
                      hubness=image.hubness)


def refresh(options: RefreshOptions, settings: Settings) -> RefreshSummary:
    """`recsys refresh` (``recommender.refresh.pipeline``) against the configured store and encoders."""
    from recommender.refresh.pipeline import run_refresh

    return run_refresh(options, settings, lambda: open_store(settings),
                       lambda store, progress: vectorizer(settings, store, progress))


def switch_release(settings: Settings, version: str | None, progress: bool = True) -> str:
    """Publish ``version`` by hand (None: roll back) and sync the configured store (``recommender.refresh.switch``)."""
    from recommender.refresh.switch import switch_release as switch

    return switch(settings.data_dir, version, lambda: open_store(settings), progress)


def evaluate_offline(options: EvaluateOptions, settings: Settings) -> dict[str, Any]:
    """`recsys evaluate` (``recommender.evaluation.offline``) against the configured store."""
    from recommender.evaluation.offline import evaluate_offline as run

    return run(options, settings, lambda: open_store(settings))


def evaluate_search(options: SearchEvalOptions, settings: Settings, checkpoint: Path | None = None
                    ) -> dict[str, object]:
    """`recsys evaluate-search` (``recommender.evaluation.search_eval``) with the configured encoders (``checkpoint``
    overrides the image encoder's)."""
    from recommender.catalog.images import ImageLimits
    from recommender.evaluation.search_eval import run_search_evaluation

    if checkpoint is not None:
        settings = replace(settings, image_encoder=replace(settings.image_encoder, checkpoint=checkpoint))

    def untrained(path: Path | None) -> OpenClipImageEncoder:
        return OpenClipImageEncoder(replace(settings.image_encoder, checkpoint=path), load_weights=False)

    configured, text = image_encoder(settings), text_encoder(settings)
    v = settings.vectorize
    return run_search_evaluation(options, text, configured, untrained,
                                 ImageLimits(v.image_timeout_s, v.max_image_bytes, v.max_image_pixels),
                                 settings.image_encoder.batch_size)
