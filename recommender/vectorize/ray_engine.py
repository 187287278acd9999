"""The Ray engine (``vectorize.engine = "ray"``, the ``ray`` extra): the vectorize stages as a Ray Data pipeline.
The only module that imports ``ray``.

read (the driver: catalog rows beside their stored fingerprints) → plan (tasks: image bytes, fingerprints;
unchanged products stop here) → image (an actor pool: decode, preprocess, encode) → text (an actor pool) → write
(one actor: stored vectors carried over, hubness penalties, upserts). Each encoder actor loads its model once.
The stages are the local engine's functions (``stages``); every stage reports its part of the summary to a small
tally actor, and a stage failing with a RecommenderError records it there, so the driver raises that same error.
"""

from __future__ import annotations

import logging
import math
import pickle
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import ray
from ray.data import ActorPoolStrategy, DataContext, Dataset
from tqdm import tqdm

from recommender.catalog.fingerprints import Fingerprints
from recommender.catalog.images import ImageLimits, image_limits
from recommender.catalog.reader import CatalogReader
from recommender.config import VectorizeSettings, WeaviateSettings
from recommender.errors import ConfigError, RecommenderError
from recommender.store.products import ProductStore
from recommender.vectorize.stages import (
    ImageTower,
    Planner,
    Prepared,
    VectorizeSummary,
    assemble,
    encode_images,
    encode_texts,
    prepare_image,
    run_stages,
    timed,
    write,
)

if TYPE_CHECKING:
    from recommender.encoders.hubness import HubnessCorrection

T = TypeVar("T")
EncoderFactory = Callable[[], Any]  # builds an (unloaded) encoder; picklable, so each actor builds its own


@dataclass(frozen=True)
class StageCpus:
    """Logical CPUs each stage's task or actor reserves."""

    reader: float
    writer: float
    encoder: float


def stage_cpus(total: float, workers: int, encoder_cpus: float = 0.0) -> StageCpus:
    """Share ``total`` CPUs: the reader and the writer always keep theirs, the encoder actors (``workers`` per
    encoder) split the rest. Measured: with whole CPUs per encoder on a 2-CPU Ray, the writer stayed pending."""
    if workers < 1:
        raise ConfigError(f"vectorize.ray_workers must be at least 1, not {workers}")
    reader = writer = min(0.25, total / 8)
    share = (total - reader - writer) / (2 * workers)
    if encoder_cpus > share + 1e-9 or share <= 0:
        raise ConfigError(f"{2 * workers} encoder actors with {encoder_cpus or share:g} CPUs each do not fit in "
                          f"{total:g} CPUs beside the reader and the writer: lower vectorize.ray_workers or "
                          "vectorize.ray_encoder_cpus")
    return StageCpus(reader, writer, encoder_cpus or share)


@contextmanager
def ray_session(settings: VectorizeSettings) -> Iterator[float]:
    """Ray for one run; yields its CPU count. ``ray_address`` connects to a running cluster, else a local Ray
    starts on 127.0.0.1; ``ray.shutdown()`` after either (a local Ray's processes stop with it). A session the
    caller opened already is used as it is and left open."""
    if ray.is_initialized():
        yield float(ray.cluster_resources().get("CPU", 0.0))
        return
    options: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING, "log_to_driver": False}
    try:
        if settings.ray_address:
            ray.init(address=settings.ray_address, **options)
        else:
            ray.init(num_cpus=settings.ray_num_cpus or None, _node_ip_address="127.0.0.1", **options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise RecommenderError(f"cannot start or reach Ray (vectorize.ray_address={settings.ray_address!r}): "
                               f"{exc}") from exc
    try:
        context = DataContext.get_current()
        context.enable_progress_bars = False  # the job's own bar shows progress
        context.print_on_execution_start = False
        yield float(ray.cluster_resources().get("CPU", 0.0))
    finally:
        ray.shutdown()


def _pack(items: list[Any]) -> dict[str, np.ndarray]:
    """A batch of stage objects as one binary column (Arrow keeps bytes as they are)."""
    column = np.empty(len(items), dtype=object)
    column[:] = [pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL) for item in items]
    return {"state": column}


def _unpack(batch: dict[str, np.ndarray]) -> list[Any]:
    return [pickle.loads(raw) for raw in batch["state"]]  # our own stage objects, from our own pipeline


@ray.remote(num_cpus=0)
class _Tally:
    """Where the stages report their parts of the summary, and the first error that stopped one."""

    def __init__(self) -> None:
        self.summary = VectorizeSummary()
        self.planned = 0
        self.failure: RecommenderError | None = None

    def add(self, part: VectorizeSummary, planned: int) -> None:
        self.summary.merge(part)
        self.planned += planned

    def fail(self, error: RecommenderError) -> None:
        self.failure = self.failure or error

    def planned_count(self) -> int:
        return self.planned

    def result(self) -> tuple[VectorizeSummary, RecommenderError | None]:
        return self.summary, self.failure


def _reporting(tally: Any, step: Callable[[], T]) -> T:
    """Run a stage step; a RecommenderError is recorded in the tally (Ray wraps what crosses processes)."""
    try:
        return step()
    except RecommenderError as exc:
        ray.get(tally.fail.remote(exc))
        raise


def _plan(batch: dict[str, np.ndarray], planner: Planner, tally: Any) -> dict[str, np.ndarray]:
    """The plan stage (tasks): only the products with something to write go on."""
    rows: list[tuple[Any, Fingerprints | None]] = _unpack(batch)
    part = VectorizeSummary()

    def plan() -> list[Prepared]:
        with timed(part, "plan"):
            return [planner(product, old) for product, old in rows]

    prepared = _reporting(tally, plan)
    part.image_problems += [(p.product_id, p.image_error) for p in prepared if p.image_error]
    todo = [p for p in prepared if p.plan.write]
    part.skipped_unchanged += len(prepared) - len(todo)
    ray.get(tally.add.remote(part, len(rows)))
    return _pack(todo)


class _Stage:
    """A stage actor: ``process`` runs on each batch of Prepared; its part of the summary goes to the tally."""

    def __init__(self, tally: Any) -> None:
        self.tally = tally

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        part = VectorizeSummary()
        items: list[Prepared] = _unpack(batch)
        out = _reporting(self.tally, lambda: self.process(items, part))
        ray.get(self.tally.add.remote(part, 0))
        return _pack(out)

    def process(self, items: list[Prepared], part: VectorizeSummary) -> list[Any]:
        raise NotImplementedError


class _ImageStage(_Stage):
    """Decode, preprocess and encode images with one tower per actor, loaded once."""

    def __init__(self, tally: Any, factory: EncoderFactory, limits: ImageLimits) -> None:
        super().__init__(tally)
        self.limits = limits
        self.tower: ImageTower = _reporting(tally, lambda: _loaded(factory()))

    def process(self, items: list[Prepared], part: VectorizeSummary) -> list[Any]:
        with timed(part, "prepare_image"):
            prepared = [prepare_image(p, self.tower, self.limits) for p in items]
        part.image_problems += [(p.product_id, p.image_error) for p, before in zip(prepared, items, strict=True)
                                if before.image_bytes is not None and p.image_error]
        return encode_images(prepared, self.tower, part)


class _TextStage(_Stage):
    """Encode texts with one text model per actor, loaded once."""

    def __init__(self, tally: Any, factory: EncoderFactory) -> None:
        super().__init__(tally)
        self.encoder = _reporting(tally, lambda: _loaded(factory()))

    def process(self, items: list[Prepared], part: VectorizeSummary) -> list[Any]:
        return encode_texts(items, self.encoder, part)


class _WriteStage(_Stage):
    """Assemble the objects and upsert them over the actor's own store connection."""

    def __init__(self, tally: Any, weaviate: WeaviateSettings, batch_size: int,
                 hubness: HubnessCorrection | None) -> None:
        super().__init__(tally)
        self.batch_size, self.hubness = batch_size, hubness
        self.store = _reporting(tally, lambda: ProductStore.open(weaviate, job=True))

    def process(self, items: list[Prepared], part: VectorizeSummary) -> list[Any]:
        write(assemble(items, self.store, self.hubness, part), self.store, self.batch_size, part)
        return [p.product_id for p in items]


def _loaded(encoder: T) -> T:
    """The encoder with its model loaded (asking its dimension loads it), so an actor loads it once, up front."""
    _ = encoder.dim  # type: ignore[attr-defined]
    return encoder


class RayVectorizer:
    """The vectorize run as a Ray Data pipeline; same stages, fingerprints, ids and summary as ``Vectorizer``."""

    def __init__(self, store: ProductStore, text_encoder: EncoderFactory, image_encoder: EncoderFactory,
                 settings: VectorizeSettings, weaviate: WeaviateSettings, progress: bool = True,
                 hubness: HubnessCorrection | None = None) -> None:
        """The encoders are factories: every actor builds and loads its own. ``weaviate``: where the writer
        actor connects (the store the driver reads fingerprints from and deletes in)."""
        self.store, self.settings, self.weaviate = store, settings, weaviate
        self.text_factory, self.image_factory = text_encoder, image_encoder
        self.progress, self.hubness = progress, hubness
        self.limits = image_limits(settings)

    def run(self, catalog_dir: Path, allow_mass_delete: bool = False) -> VectorizeSummary:
        """Bring the store in line with the catalog; returns the summary (raises after a failed write)."""
        return run_stages(self.store, self.settings, catalog_dir, self.progress, allow_mass_delete,
                          lambda reader, stored, summary, bar: self._execute(catalog_dir, reader, stored, summary, bar))

    def _execute(self, root: Path, reader: CatalogReader, stored: dict[str, Fingerprints], summary: VectorizeSummary,
                 bar: tqdm[Any]) -> None:
        rows = [(product, stored.get(product.product_id)) for product in reader]
        if not rows:
            return
        planner = Planner(root, self.text_factory().identity, self.image_factory().identity, self.limits)
        started = time.perf_counter()
        with ray_session(self.settings) as total_cpus:
            summary.add_time("ray_start", time.perf_counter() - started)
            cpus = stage_cpus(total_cpus, self.settings.ray_workers, self.settings.ray_encoder_cpus)
            tally = _Tally.remote()  # type: ignore[attr-defined]
            with timed(summary, "pipeline"):
                self._drain(self._pipeline(rows, planner, cpus, tally), tally, bar)
            part, _ = ray.get(tally.result.remote())
        summary.merge(part)
        order = {product.product_id: i for i, (product, _) in enumerate(rows)}
        summary.image_problems.sort(key=lambda problem: order.get(problem[0], len(order)))

    def _pipeline(self, rows: list[tuple[Any, Fingerprints | None]], planner: Planner, cpus: StageCpus,
                  tally: Any) -> Dataset:
        chunk, workers = max(1, self.settings.chunk_size), self.settings.ray_workers
        dataset: Dataset = ray.data.from_items([{"state": pickle.dumps(row)} for row in rows],
                                               override_num_blocks=math.ceil(len(rows) / chunk))
        common: dict[str, Any] = {"batch_size": chunk, "batch_format": "numpy"}
        dataset = dataset.map_batches(partial(_plan, planner=planner, tally=tally), num_cpus=cpus.reader, **common)
        dataset = dataset.map_batches(_ImageStage, fn_constructor_kwargs={
            "tally": tally, "factory": self.image_factory, "limits": self.limits},
            compute=ActorPoolStrategy(size=workers), num_cpus=cpus.encoder, **common)
        dataset = dataset.map_batches(_TextStage, fn_constructor_kwargs={"tally": tally, "factory": self.text_factory},
                                      compute=ActorPoolStrategy(size=workers), num_cpus=cpus.encoder, **common)
        return dataset.map_batches(_WriteStage, fn_constructor_kwargs={
            "tally": tally, "weaviate": self.weaviate, "batch_size": self.settings.write_batch_size,
            "hubness": self.hubness}, compute=ActorPoolStrategy(size=1), num_cpus=cpus.writer,
            batch_size=max(1, self.settings.write_batch_size), batch_format="numpy")

    @staticmethod
    def _drain(dataset: Dataset, tally: Any, bar: tqdm[Any]) -> None:
        """Run the pipeline to its end, advancing the bar by the products planned so far."""
        try:
            for _ in dataset.iter_batches(batch_size=None, batch_format="numpy"):
                bar.update(ray.get(tally.planned_count.remote()) - bar.n)
        except Exception as exc:  # Ray wraps a stage's error; the tally holds the original
            _, failure = ray.get(tally.result.remote())
            if failure is not None:
                raise failure from None
            raise RecommenderError(f"the Ray vectorize pipeline failed: {exc}") from exc
        bar.update(ray.get(tally.planned_count.remote()) - bar.n)
