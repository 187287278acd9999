"""Facade the jobs and the API call: build components from settings, each given only its own part."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recommender.ask.compose import Composer, TemplateComposer
from recommender.ask.compose_llm import LLMComposer
from recommender.ask.guard import AnswerGuard
from recommender.ask.llm_planner import LLMPlanner
from recommender.ask.model import AskRequest, AskResult
from recommender.ask.planner import Planner, RulePlanner
from recommender.ask.question_model import Question
from recommender.ask.retrieval import AskStore, Encoders, Related, Retriever
from recommender.ask.service import AskService
from recommender.ask.vocabulary import Vocabulary
from recommender.ask.vocabulary import vocabulary_path as ask_vocabulary_path
from recommender.ask.vocabulary import write_vocabulary as save_vocabulary
from recommender.catalog.images import decode_image, image_limits, read_image_bytes
from recommender.catalog.reader import CatalogReader
from recommender.config import ImageEncoderSettings, Settings
from recommender.domain import Product, ProductFilter
from recommender.encoders.image import OpenClipImageEncoder
from recommender.encoders.text import SentenceTransformerEncoder
from recommender.errors import ConfigError
from recommender.evaluation.ask_eval import evaluate_ask
from recommender.events.backend import EventLogs
from recommender.explain.llm import llm_backend
from recommender.ranking.service import RecommendationService
from recommender.search.searcher import QueryEncoders
from recommender.store.cluster import LocalCluster
from recommender.store.products import ProductStore
from recommender.store.server import LocalWeaviate

if TYPE_CHECKING:
    from recommender.evaluation.next_item_run import NextItemOptions
    from recommender.evaluation.offline import EvaluateOptions
    from recommender.evaluation.search_eval import SearchEvalOptions
    from recommender.events.log import Event
    from recommender.refresh.pipeline import RefreshOptions, RefreshSummary
    from recommender.refresh.train import TrainOptions, TrainSummary
    from recommender.sequence.store import SequenceModel
    from recommender.tuning.run import SequenceTrainOptions, TuneOptions
    from recommender.vectorize import VectorizeEngine

log = logging.getLogger(__name__)


@contextmanager
def running_weaviate(settings: Settings, autostart: bool = True) -> Iterator[None]:
    """Ensure a Weaviate is reachable: a configured URL is used as is; else the local server (or local cluster,
    ``weaviate.nodes`` > 1) is reused when ready, or started for the duration of the block (and stopped after)
    when ``autostart``.
    """
    if settings.weaviate.url:
        yield
        return
    server: LocalWeaviate | LocalCluster = (LocalCluster.from_settings(settings) if settings.weaviate.nodes > 1
                                            else LocalWeaviate.from_settings(settings))
    if server.is_ready() or not autostart:
        yield
        return
    log.info("starting local Weaviate (%d node(s)) on port %d", settings.weaviate.nodes, settings.weaviate.http_port)
    server.start()
    try:
        yield
    finally:
        server.stop()


@contextmanager
def open_store(settings: Settings, autostart: bool = True) -> Iterator[ProductStore]:
    """A connected ProductStore for the configured collection, with Weaviate running meanwhile (for the jobs:
    their read deadline and retries, ``weaviate.job_timeout_s`` / ``job_retries``)."""
    with running_weaviate(settings, autostart), ProductStore.open(settings.weaviate, job=True) as store:
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
    return OpenClipImageEncoder(_image_encoder_settings(settings), text_encoder=text_encoder(settings).identity)


def _image_encoder_settings(settings: Settings) -> ImageEncoderSettings:
    s = settings.image_encoder
    current = image_encoder_dir(settings) / "current"
    if s.checkpoint is None and s.pretrained is None and current.exists():
        s = replace(s, checkpoint=current.resolve())
    return s


def encoder_factories(settings: Settings) -> tuple[Callable[[], SentenceTransformerEncoder],
                                                   Callable[[], OpenClipImageEncoder]]:
    """Picklable builders of the configured text and image encoders, their paths resolved here (the Ray engine's
    actors each build one, wherever their working directory is)."""
    return (partial(SentenceTransformerEncoder, settings.text_encoder),
            partial(OpenClipImageEncoder, _image_encoder_settings(settings),
                    text_encoder=text_encoder(settings).identity))


def vocabulary_path(settings: Settings) -> Path:
    """Where the ask vocabulary of the configured collection is kept (written by vectorize and refresh)."""
    return ask_vocabulary_path(settings.data_dir, settings.weaviate.collection)


def write_vocabulary(settings: Settings, catalog_dir: Path) -> Vocabulary:
    """Gather the catalog's own words (category levels, colours, brands, small-valued columns) for the planner."""
    return save_vocabulary(CatalogReader(catalog_dir), vocabulary_path(settings))


def load_vocabulary(settings: Settings, records: Callable[[], Iterable[Product]]) -> Vocabulary:
    """The saved vocabulary, else one gathered from the store's records (logged: it reads every object)."""
    path = vocabulary_path(settings)
    if path.is_file():
        return Vocabulary.load(path)
    log.info("no ask vocabulary at %s: gathering it from the store", path)
    return Vocabulary.from_products(records())


def ask_service(settings: Settings, store: AskStore, encoders: Encoders, vocabulary: Vocabulary,
                related: Related | None) -> AskService:
    """The configured ask service: rule or LLM planner, template or LLM answers (both validated, see ask/)."""
    s = settings.ask
    if s.planner not in ("rules", "llm") or s.answer not in ("template", "llm"):
        raise ConfigError(f"ask.planner must be rules or llm and ask.answer template or llm, "
                          f"not {s.planner!r} / {s.answer!r}")
    rules = RulePlanner(vocabulary)
    template = TemplateComposer(currency=s.currency)
    planner: Planner = rules
    composer: Composer = template
    if "llm" in (s.planner, s.answer):
        backend = llm_backend(settings.explain)
        if s.planner == "llm":
            planner = LLMPlanner(vocabulary, backend.complete, rules)
        if s.answer == "llm":
            composer = LLMComposer(backend, AnswerGuard(), template, timeout_s=s.timeout_s)
    retriever = Retriever(store, encoders, s, related)
    return AskService(planner, retriever, composer, store.records, s, template)


def related_products(service: RecommendationService, max_k: int) -> Related:
    """The ask's "goes with" source: a product page's ranked list (co-purchase, co-view, ALS, …) with its sources."""

    def related(product_id: str, k: int) -> list[tuple[str, tuple[str, ...]]]:
        items = service.for_product(product_id, k=min(k, max_k)).items
        return [(item.product_id, item.sources) for item in items]

    return related


@contextmanager
def ask_session(settings: Settings, store: ProductStore) -> Iterator[AskService]:
    """An ask service over an open store for jobs (CLI, batch, evaluation); released after the block."""
    with EventLogs(settings.events, settings.data_dir) as events:
        recommendations = RecommendationService(store, settings.data_dir, settings.ranking, events)
        vocabulary = load_vocabulary(settings, store.iter_records)
        loaded = QueryEncoders(lambda: text_encoder(settings), lambda: image_encoder(settings))  # built once each
        encoders = Encoders(lambda: loaded.get("text"), lambda: loaded.get("image"))
        yield ask_service(settings, store, encoders, vocabulary,
                          related_products(recommendations, settings.ranking.max_k))


def evaluate_ask_catalog(settings: Settings, catalog_dir: Path, questions: Sequence[Question], out: Path,
                         progress: bool = True) -> dict[str, Any]:
    """Ask every question against the store (vectorized from ``catalog_dir``), beside a bare hybrid query (the
    question's text encoded + one Weaviate hybrid query, k=5) timed in the same run; write metrics + report."""
    s = settings.search
    limits = image_limits(s)
    with open_store(settings) as store, ask_session(settings, store) as service:
        encoder = service.retriever.text_encoder()

        def ask(q: Question) -> AskResult:
            image = decode_image(read_image_bytes(q.image, catalog_dir, limits), limits, q.image) if q.image else None
            return service.ask(AskRequest(q.question, image, q.product_id, k=settings.ask.k))

        def bare(q: Question) -> object:
            return store.hybrid(q.question, encoder.encode_batch([q.question])[0], "text", settings.ask.k,
                                ProductFilter(in_stock=True), settings.ask.alpha)

        return evaluate_ask(questions, ask, bare, out_dir=out, progress=progress)


# The jobs' pipelines, wired to the configured store and encoders. Imported inside each function: the API
# imports this module and never runs a job.

def train_behaviour(options: TrainOptions, settings: Settings) -> TrainSummary:
    """`recsys train` (``recommender.refresh.train``) against the configured store."""
    from recommender.refresh.train import train_behaviour as run

    return run(options, settings, lambda: open_store(settings))


def vectorizer(settings: Settings, store: ProductStore, progress: bool = True) -> VectorizeEngine:
    """The vectorize pipeline on the configured engine (``vectorize.engine``: ``local`` or ``ray``) for the
    configured encoders (the image tower's hubness correction included)."""
    from recommender.vectorize import Vectorizer

    engine = settings.vectorize.engine
    image = image_encoder(settings)
    if engine == "local":
        return Vectorizer(store, text_encoder(settings), image, settings.vectorize, progress=progress,
                          hubness=image.hubness)
    if engine != "ray":
        raise ConfigError(f"vectorize.engine must be local or ray, not {engine!r}")
    try:
        from recommender.vectorize.ray_engine import RayVectorizer
    except ImportError as exc:
        raise ConfigError(f"vectorize.engine = ray needs the ray extra (pip install -e '.[ray]'): {exc}") from exc
    text_factory, image_factory = encoder_factories(settings)
    return RayVectorizer(store, text_factory, image_factory, settings.vectorize, settings.weaviate,
                         progress=progress, hubness=image.hubness)


def refresh(options: RefreshOptions, settings: Settings) -> RefreshSummary:
    """`recsys refresh` (``recommender.refresh.pipeline``) against the configured store and encoders."""
    from recommender.refresh.pipeline import run_refresh

    return run_refresh(options, settings, lambda: open_store(settings),
                       lambda store, progress: vectorizer(settings, store, progress), retune)


def retune(events: Sequence[Event], settings: Settings, progress: bool) -> tuple[Settings, dict[str, Any]]:
    """The refresh's tune stage (``recommender.tuning.periodic``): re-tune when the recorded choice is stale."""
    from recommender.tuning.periodic import retune_if_due

    tuned, stage = retune_if_due(events, settings, progress)
    return tuned, stage.as_dict()


def switch_release(settings: Settings, version: str | None, progress: bool = True) -> str:
    """Publish ``version`` by hand (None: roll back) and sync the configured store (``recommender.refresh.switch``)."""
    from recommender.refresh.switch import switch_release as switch

    return switch(settings.data_dir, version, lambda: open_store(settings), progress)


def evaluate_offline(options: EvaluateOptions, settings: Settings) -> dict[str, Any]:
    """`recsys evaluate` (``recommender.evaluation.offline``) against the configured store."""
    from recommender.evaluation.offline import evaluate_offline as run

    return run(options, settings, lambda: open_store(settings))


def sequence_model(settings: Settings, path: Path | None = None) -> SequenceModel | None:
    """A saved sequence model: ``path`` (a version folder or a store), else the data dir's current one, else None."""
    from recommender.sequence.store import SequenceModelNotFound, SequenceStore

    if path is not None and (path / "config.json").is_file():
        return SequenceStore(path.parent).load(path.name)
    store = SequenceStore(path) if path is not None else SequenceStore.in_data_dir(settings.data_dir)
    try:
        return store.load()
    except SequenceModelNotFound:
        if path is not None:
            raise
        return None


def evaluate_next_item(options: NextItemOptions, settings: Settings, sequence: Path | None = None) -> dict[str, Any]:
    """`recsys evaluate --protocol next-item` (``recommender.evaluation.next_item_run``) with the configured
    behaviour settings and the saved sequence model, if any."""
    from recommender.evaluation.next_item_run import run_next_item

    return run_next_item(options, settings.collaborative, sequence_model(settings, sequence))


def tune_behaviour(options: TuneOptions, settings: Settings) -> dict[str, Any]:
    """`recsys tune` (``recommender.tuning.run``): search, record the choice as the data dir's tuned defaults."""
    from recommender.tuning.run import run_tune

    return run_tune(options, settings.collaborative, settings.data_dir)


def train_sequence(options: SequenceTrainOptions, settings: Settings) -> dict[str, Any]:
    """`recsys train-sequence` (``recommender.tuning.run``): SASRec on a catalog's events, saved and published."""
    from recommender.tuning.run import run_train_sequence

    return run_train_sequence(options, settings.data_dir)


def evaluate_search(options: SearchEvalOptions, settings: Settings, checkpoint: Path | None = None
                    ) -> dict[str, object]:
    """`recsys evaluate-search` (``recommender.evaluation.search_eval``) with the configured encoders (``checkpoint``
    overrides the image encoder's)."""
    from recommender.evaluation.search_eval import run_search_evaluation

    if checkpoint is not None:
        settings = replace(settings, image_encoder=replace(settings.image_encoder, checkpoint=checkpoint))

    def untrained(path: Path | None) -> OpenClipImageEncoder:
        return OpenClipImageEncoder(replace(settings.image_encoder, checkpoint=path), load_weights=False)

    configured, text = image_encoder(settings), text_encoder(settings)
    v = settings.vectorize
    return run_search_evaluation(options, text, configured, untrained,
                                 image_limits(v),
                                 settings.image_encoder.batch_size)
