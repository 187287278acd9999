"""The local engine (the default): the vectorize stages in one process, with threads.

Streams the catalog in chunks, so memory stays flat however large it is. Loader threads plan and prepare the next
products (image bytes, fingerprints, decode, preprocess) while the encoders work on the current chunk, and one
writer thread writes the previous batch meanwhile.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from recommender.catalog.fingerprints import Fingerprints
from recommender.catalog.images import image_limits
from recommender.catalog.reader import CatalogReader
from recommender.config import VectorizeSettings
from recommender.domain import Product
from recommender.encoders.base import Encoder
from recommender.store.products import ProductStore, StoredProduct
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


class Vectorizer:
    """Runs the pipeline for one catalog folder against one store with one pair of encoders."""

    def __init__(self, store: ProductStore, text_encoder: Encoder[str], image_encoder: ImageTower,
                 settings: VectorizeSettings, progress: bool = True, hubness: HubnessCorrection | None = None) -> None:
        """``hubness``: the image encoder's text→image correction; each written image vector's penalty is
        stored beside it (recomputed for reused vectors too, so it always matches the vector)."""
        self.store = store
        self.text_encoder = text_encoder
        self.image_encoder = image_encoder
        self.hubness = hubness
        self.settings = settings
        self.progress = progress
        self.limits = image_limits(settings)

    def run(self, catalog_dir: Path, allow_mass_delete: bool = False) -> VectorizeSummary:
        """Bring the store in line with the catalog; returns the summary (raises after a failed write)."""
        return run_stages(self.store, self.settings, catalog_dir, self.progress, allow_mass_delete,
                          lambda reader, stored, summary, bar: self._execute(catalog_dir, reader, stored, summary, bar))

    def _execute(self, root: Path, reader: CatalogReader, stored: dict[str, Fingerprints], summary: VectorizeSummary,
                 bar: tqdm[Any]) -> None:
        planner = Planner(root, self.text_encoder.identity, self.image_encoder.identity, self.limits)

        def prepare(product: Product) -> Prepared:
            return prepare_image(planner(product, stored.get(product.product_id)), self.image_encoder, self.limits)

        # One write in flight on its own thread, so the encoders work on the next chunk meanwhile. Changed
        # products are gathered up to a write batch first: an incremental run with a few changes scattered over
        # many chunks then pays one batch round trip (~0.7 s each, measured) instead of one per chunk.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="writer") as writer:
            pending: Future[None] | None = None
            items: list[StoredProduct] = []
            for chunk in self._chunks(self._prepared(reader, prepare, summary), summary):
                items += self._encode_chunk(chunk, summary)
                if len(items) >= self.settings.write_batch_size:
                    self._finish_write(pending, summary)
                    pending, items = writer.submit(self._write, items, summary), []
                bar.update(len(chunk))
            self._finish_write(pending, summary)
            if items:
                self._write(items, summary)

    def _prepared(self, products: Iterable[Product], prepare: Callable[[Product], Prepared],
                  summary: VectorizeSummary) -> Iterator[Prepared]:
        """Run ``prepare`` on loader threads, a bounded window ahead, yielding results in catalog order."""
        window = max(2, 2 * self.settings.chunk_size)
        pending: deque[Future[Prepared]] = deque()
        with ThreadPoolExecutor(max_workers=max(1, self.settings.loader_threads),
                                thread_name_prefix="loader") as pool:
            for product in products:
                pending.append(pool.submit(prepare, product))
                if len(pending) >= window:
                    yield self._wait(pending.popleft(), summary)
            while pending:
                yield self._wait(pending.popleft(), summary)

    @staticmethod
    def _wait(future: Future[Prepared], summary: VectorizeSummary) -> Prepared:
        with timed(summary, "wait_loader"):
            return future.result()

    def _chunks(self, prepared: Iterator[Prepared], summary: VectorizeSummary) -> Iterator[list[Prepared]]:
        chunk: list[Prepared] = []
        for item in prepared:
            if item.image_error:
                summary.image_problems.append((item.product_id, item.image_error))
            chunk.append(item)
            if len(chunk) >= self.settings.chunk_size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    @staticmethod
    def _finish_write(pending: Future[None] | None, summary: VectorizeSummary) -> None:
        if pending is not None:
            with timed(summary, "wait_writer"):
                pending.result()  # re-raises a failed write here, in the job's thread

    def _write(self, items: list[StoredProduct], summary: VectorizeSummary) -> None:
        write(items, self.store, self.settings.write_batch_size, summary)

    def _encode_chunk(self, chunk: list[Prepared], summary: VectorizeSummary) -> list[StoredProduct]:
        """Encode what changed in one chunk and reuse stored vectors for the rest: the objects to write."""
        todo = [p for p in chunk if p.plan.write]
        summary.skipped_unchanged += len(chunk) - len(todo)
        todo = encode_images(encode_texts(todo, self.text_encoder, summary), self.image_encoder, summary)
        return assemble(todo, self.store, self.hubness, summary)
