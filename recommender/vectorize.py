"""The vectorize pipeline: catalog reader → loader (image bytes, fingerprints, decode) → encoders → store.

Streams the catalog in chunks, so memory stays flat however large it is. Loader threads prepare the next
products while the encoders work on the current chunk. Products whose fingerprints match the store are
skipped; a product whose image alone changed re-encodes only its image. Every write is an idempotent
upsert keyed by uuid5(product_id), so a run killed half-way and re-run ends like one clean run.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from tqdm import tqdm

from recommender.catalog.fingerprints import (
    NO_IMAGE,
    Fingerprints,
    Plan,
    image_fingerprint,
    plan_product,
    properties_fingerprint,
    text_fingerprint,
)
from recommender.catalog.images import ImageProblem, decode_image, image_limits, is_url, read_image_bytes
from recommender.catalog.reader import CatalogReader, count_rows
from recommender.config import VectorizeSettings
from recommender.domain import Product, RowError
from recommender.encoders.base import Encoder
from recommender.errors import RecommenderError
from recommender.store.products import ProductStore, StoredProduct
from recommender.timing import StageTimer

if TYPE_CHECKING:
    from recommender.encoders.hubness import HubnessCorrection

log = logging.getLogger(__name__)


class ImageTower(Encoder[Any], Protocol):
    """An image encoder whose preprocessing can run in loader threads, apart from the model call."""

    def preprocess(self, image: Any) -> Any: ...

    def encode_prepared(self, tensors: list[Any]) -> np.ndarray: ...


class MassDeleteRefused(RecommenderError):
    """More products vanished from the catalog than the configured fraction allows."""


@dataclass
class VectorizeSummary:
    """Counts and per-stage seconds of one run; ``line()`` is the closing summary."""

    rows_read: int = 0
    invalid: int = 0
    text_encoded: int = 0
    image_encoded: int = 0
    without_image: int = 0
    skipped_unchanged: int = 0
    written: int = 0
    deleted: int = 0
    failed: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    errors: list[RowError] = field(default_factory=list)
    image_problems: list[tuple[str, str]] = field(default_factory=list)
    timer: StageTimer = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.timer = StageTimer(self.seconds)

    def add_time(self, stage: str, seconds: float) -> None:
        """Accumulate wall time spent in a stage."""
        self.timer.add(stage, seconds)

    def line(self) -> str:
        """One line of counts and timings for the end of the job."""
        stages = " ".join(f"{k}={v:.1f}s" for k, v in self.seconds.items())
        return (f"vectorize: read={self.rows_read} invalid={self.invalid} text_encoded={self.text_encoded} "
                f"image_encoded={self.image_encoded} without_image={self.without_image} "
                f"skipped_unchanged={self.skipped_unchanged} written={self.written} deleted={self.deleted} "
                f"failed={self.failed} | {stages}")


@dataclass(frozen=True)
class Prepared:
    """A product after the loader: fingerprints, plan, and a model-ready image when one must be encoded."""

    product: Product
    fingerprints: Fingerprints
    plan: Plan
    text: str = ""
    image_tensor: Any = None
    image_error: str = ""


def _Timer(summary: VectorizeSummary, stage: str) -> AbstractContextManager[None]:
    """Time a stage into the summary (the shared stage timer; the name keeps the call sites as they were)."""
    return summary.timer.stage(stage)


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
        summary = VectorizeSummary()
        started = time.perf_counter()
        with _Timer(summary, "scan_store"):
            self.store.ensure_collection()
            stored = self.store.fingerprints()
        reader = CatalogReader(catalog_dir)
        text_id, image_id = self.text_encoder.identity, self.image_encoder.identity
        bar = tqdm(total=count_rows(catalog_dir), unit="product", desc="vectorize", disable=not self.progress)
        try:
            prepare = self._preparer(catalog_dir, stored, text_id, image_id)
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
        finally:
            bar.close()
            summary.rows_read, summary.errors = reader.rows_read, list(reader.errors)
            summary.invalid = len(reader.errors)
        with _Timer(summary, "delete"):
            self._delete_stale(set(stored), reader.seen_ids, summary, allow_mass_delete)
        summary.add_time("total", time.perf_counter() - started)
        return summary

    def _preparer(self, root: Path, stored: dict[str, Fingerprints], text_id: str, image_id: str
                  ) -> Callable[[Product], Prepared]:
        def prepare(product: Product) -> Prepared:
            text = product.text_for_embedding()
            image_bytes, problem, transient = self._read_image(product, root)
            fp = Fingerprints(text_fingerprint(text_id, text),
                              image_fingerprint(image_id, image_bytes) if image_bytes is not None else NO_IMAGE,
                              properties_fingerprint(product))
            old = stored.get(product.product_id)
            plan = plan_product(fp, old, image_transient_failure=transient)
            if plan.keep_old_image and old is not None and transient:
                fp = Fingerprints(fp.text, old.image, fp.properties)
            tensor = None
            if plan.encode_image and image_bytes is not None:
                try:
                    tensor = self.image_encoder.preprocess(decode_image(image_bytes, self.limits, product.image or ""))
                except ImageProblem as exc:
                    problem = str(exc)
            return Prepared(product, fp, plan, text, tensor, problem)
        return prepare

    def _read_image(self, product: Product, root: Path) -> tuple[bytes | None, str, bool]:
        if not product.image:
            return None, "", False
        try:
            return read_image_bytes(product.image, root, self.limits), "", False
        except ImageProblem as exc:
            transient = is_url(product.image) and "answered HTTP 4" not in str(exc)
            return None, str(exc), transient

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
        with _Timer(summary, "wait_loader"):
            return future.result()

    def _chunks(self, prepared: Iterator[Prepared], summary: VectorizeSummary) -> Iterator[list[Prepared]]:
        chunk: list[Prepared] = []
        for item in prepared:
            if item.image_error:
                summary.image_problems.append((item.product.product_id, item.image_error))
            chunk.append(item)
            if len(chunk) >= self.settings.chunk_size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    @staticmethod
    def _finish_write(pending: Future[None] | None, summary: VectorizeSummary) -> None:
        if pending is not None:
            with _Timer(summary, "wait_writer"):
                pending.result()  # re-raises a failed write here, in the job's thread

    def _write(self, items: list[StoredProduct], summary: VectorizeSummary) -> None:
        with _Timer(summary, "write"):
            try:
                summary.written += self.store.upsert(items, self.settings.write_batch_size)
            except RecommenderError:
                summary.failed += len(items)
                raise

    def _encode_chunk(self, chunk: list[Prepared], summary: VectorizeSummary) -> list[StoredProduct]:
        """Encode what changed in one chunk and reuse stored vectors for the rest: the objects to write."""
        todo = [p for p in chunk if p.plan.write]
        summary.skipped_unchanged += len(chunk) - len(todo)
        if not todo:
            return []
        vectors: dict[str, dict[str, np.ndarray]] = {p.product.product_id: {} for p in todo}
        self._encode_texts([p for p in todo if p.plan.encode_text], vectors, summary)
        self._encode_images([p for p in todo if p.image_tensor is not None], vectors, summary)
        notes = self._reuse_stored(todo, vectors, summary)
        penalties = self._penalties(vectors)
        items = [StoredProduct(p.product, p.fingerprints, vectors[p.product.product_id],
                               p.image_error or notes.get(p.product.product_id, ""),
                               penalties.get(p.product.product_id, 0.0)) for p in todo]
        summary.without_image += sum(1 for i in items if "image" not in i.vectors)
        return items

    def _encode_texts(self, todo: list[Prepared], out: dict[str, dict[str, np.ndarray]],
                      summary: VectorizeSummary) -> None:
        if not todo:
            return
        with _Timer(summary, "encode_text"):
            vecs = self.text_encoder.encode_batch([p.text for p in todo])
        for p, v in zip(todo, vecs, strict=True):
            out[p.product.product_id]["text"] = v
        summary.text_encoded += len(todo)

    def _encode_images(self, todo: list[Prepared], out: dict[str, dict[str, np.ndarray]],
                       summary: VectorizeSummary) -> None:
        if not todo:
            return
        with _Timer(summary, "encode_image"):
            vecs = self.image_encoder.encode_prepared([p.image_tensor for p in todo])
        for p, v in zip(todo, vecs, strict=True):
            out[p.product.product_id]["image"] = v
        summary.image_encoded += len(todo)

    def _penalties(self, vectors: dict[str, dict[str, np.ndarray]]) -> dict[str, float]:
        """The hubness penalty of every image vector about to be written (none without a correction)."""
        with_image = [pid for pid, v in vectors.items() if "image" in v]
        if self.hubness is None or not with_image:
            return {}
        values = self.hubness.penalty(np.stack([vectors[pid]["image"] for pid in with_image]))
        return {pid: float(v) for pid, v in zip(with_image, values, strict=True)}

    def _reuse_stored(self, todo: list[Prepared], out: dict[str, dict[str, np.ndarray]],
                      summary: VectorizeSummary) -> dict[str, str]:
        """Carry over stored vectors this run keeps (unchanged text/image, behavior); returns image notes."""
        with _Timer(summary, "fetch_stored"):
            old = self.store.vectors([p.product.product_id for p in todo])
        notes: dict[str, str] = {}
        for p in todo:
            pid, kept = p.product.product_id, old.get(p.product.product_id, {})
            if not p.plan.encode_text and "text" in kept:
                out[pid]["text"] = kept["text"]
            if p.plan.keep_old_image and "image" not in out[pid]:
                if "image" in kept:
                    out[pid]["image"] = kept["image"]
                elif p.fingerprints.image != NO_IMAGE:
                    notes[pid] = "image could not be decoded (unchanged since an earlier run)"
            if "behavior" in kept:
                out[pid]["behavior"] = kept["behavior"]
        return notes

    def _delete_stale(self, stored_ids: set[str], seen_ids: set[str], summary: VectorizeSummary,
                      allow_mass_delete: bool) -> None:
        stale = sorted(stored_ids - seen_ids)
        if not stale:
            return
        limit = self.settings.max_delete_fraction * len(stored_ids)
        if len(stale) > limit and not allow_mass_delete:
            raise MassDeleteRefused(
                f"{len(stale)} of {len(stored_ids)} stored products are no longer in the catalog "
                f"(over the {self.settings.max_delete_fraction:.0%} limit); nothing was deleted. "
                "If the catalog really shrank, re-run with --allow-mass-delete.")
        summary.deleted += self.store.delete(stale)
