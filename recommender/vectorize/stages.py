"""The vectorize stages every engine runs, in this order: plan (image bytes, fingerprints, what to redo) → prepare
the image (decode, preprocess) → encode the text and the image → assemble the objects (stored vectors carried over,
hubness penalties) → write; then delete what vanished from the catalog.

The engines (``local``: threads in one process; ``ray_engine``: a Ray Data pipeline) differ only in how they run
these functions, so fingerprints, skipping, ids (uuid5 of the product id), counts and errors are the same.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
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
from recommender.catalog.images import ImageLimits, ImageProblem, decode_image, is_url, read_image_bytes
from recommender.catalog.reader import CatalogReader, count_rows
from recommender.config import VectorizeSettings
from recommender.domain import Product, RowError
from recommender.encoders.base import Encoder
from recommender.errors import RecommenderError
from recommender.store.products import ProductStore, StoredProduct
from recommender.timing import StageTimer

if TYPE_CHECKING:
    from recommender.encoders.hubness import HubnessCorrection


class ImageTower(Encoder[Any], Protocol):
    """An image encoder whose preprocessing can run apart from the model call (loader threads, another stage)."""

    def preprocess(self, image: Any) -> Any: ...

    def encode_prepared(self, tensors: list[Any]) -> np.ndarray: ...


class VectorizeEngine(Protocol):
    """What runs a vectorize: the local engine or the Ray engine."""

    def run(self, catalog_dir: Path, allow_mass_delete: bool = False) -> VectorizeSummary: ...


class MassDeleteRefused(RecommenderError):
    """More products vanished from the catalog than the configured fraction allows."""


_COUNTS = ("rows_read", "invalid", "text_encoded", "image_encoded", "without_image", "skipped_unchanged", "written",
           "deleted", "failed")


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

    def merge(self, other: VectorizeSummary) -> None:
        """Add another part's counts, seconds and problems (the Ray engine's stages each report a part)."""
        for name in _COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for stage, seconds in other.seconds.items():
            self.add_time(stage, seconds)
        self.errors += other.errors
        self.image_problems += other.image_problems

    def line(self) -> str:
        """One line of counts and timings for the end of the job."""
        stages = " ".join(f"{k}={v:.1f}s" for k, v in self.seconds.items())
        return (f"vectorize: read={self.rows_read} invalid={self.invalid} text_encoded={self.text_encoded} "
                f"image_encoded={self.image_encoded} without_image={self.without_image} "
                f"skipped_unchanged={self.skipped_unchanged} written={self.written} deleted={self.deleted} "
                f"failed={self.failed} | {stages}")


def timed(summary: VectorizeSummary, stage: str) -> AbstractContextManager[None]:
    """Time a block as one stage of the summary (the shared stage timer)."""
    return summary.timer.stage(stage)


@dataclass(frozen=True)
class Prepared:
    """A product on its way through the stages: fingerprints and plan, then image bytes → model-ready tensor →
    vectors. Frozen: each stage returns a new one."""

    product: Product
    fingerprints: Fingerprints
    plan: Plan
    text: str = ""
    image_bytes: bytes | None = None
    image_tensor: Any = None
    image_error: str = ""
    vectors: Mapping[str, np.ndarray] = field(default_factory=dict)

    @property
    def product_id(self) -> str:
        """The product's id."""
        return self.product.product_id


@dataclass(frozen=True)
class Planner:
    """Stage 1: read a product's image bytes, fingerprint text, image and properties, and decide what to redo
    against the stored fingerprints (``old``; None for a new product)."""

    root: Path
    text_id: str
    image_id: str
    limits: ImageLimits

    def __call__(self, product: Product, old: Fingerprints | None) -> Prepared:
        """The product's plan; the image bytes are kept only when the image must be encoded."""
        text = product.text_for_embedding()
        image_bytes, problem, transient = self._read_image(product)
        fp = Fingerprints(text_fingerprint(self.text_id, text),
                          image_fingerprint(self.image_id, image_bytes) if image_bytes is not None else NO_IMAGE,
                          properties_fingerprint(product))
        plan = plan_product(fp, old, image_transient_failure=transient)
        if plan.keep_old_image and old is not None and transient:
            fp = Fingerprints(fp.text, old.image, fp.properties)
        keep = image_bytes if plan.encode_image else None
        return Prepared(product, fp, plan, text, keep, image_error=problem)

    def _read_image(self, product: Product) -> tuple[bytes | None, str, bool]:
        if not product.image:
            return None, "", False
        try:
            return read_image_bytes(product.image, self.root, self.limits), "", False
        except ImageProblem as exc:
            transient = is_url(product.image) and "answered HTTP 4" not in str(exc)
            return None, str(exc), transient


def prepare_image(item: Prepared, tower: ImageTower, limits: ImageLimits) -> Prepared:
    """Stage 2: decode and preprocess the image bytes a plan kept; an image refused here becomes the product's
    ``image_error`` (it is stored without an image vector)."""
    if item.image_bytes is None:
        return item
    try:
        tensor = tower.preprocess(decode_image(item.image_bytes, limits, item.product.image or ""))
    except ImageProblem as exc:
        return replace(item, image_bytes=None, image_error=str(exc))
    return replace(item, image_bytes=None, image_tensor=tensor)


def encode_texts(items: list[Prepared], encoder: Encoder[str], summary: VectorizeSummary) -> list[Prepared]:
    """Stage 3a: the text vectors of the products whose plan says so (one batch through the encoder)."""
    todo = [i for i, p in enumerate(items) if p.plan.encode_text]
    if not todo:
        return items
    with timed(summary, "encode_text"):
        vecs = encoder.encode_batch([items[i].text for i in todo])
    summary.text_encoded += len(todo)
    return _with_vectors(items, "text", dict(zip(todo, vecs, strict=True)))


def encode_images(items: list[Prepared], tower: ImageTower, summary: VectorizeSummary) -> list[Prepared]:
    """Stage 3b: the image vectors of the products with a prepared image (the tensors are dropped after)."""
    todo = [i for i, p in enumerate(items) if p.image_tensor is not None]
    if not todo:
        return items
    with timed(summary, "encode_image"):
        vecs = tower.encode_prepared([items[i].image_tensor for i in todo])
    summary.image_encoded += len(todo)
    done = _with_vectors(items, "image", dict(zip(todo, vecs, strict=True)))
    return [replace(p, image_tensor=None) if p.image_tensor is not None else p for p in done]


def _with_vectors(items: list[Prepared], name: str, by_index: dict[int, np.ndarray]) -> list[Prepared]:
    return [replace(p, vectors={**p.vectors, name: by_index[i]}) if i in by_index else p
            for i, p in enumerate(items)]


def assemble(items: list[Prepared], store: ProductStore, hubness: HubnessCorrection | None,
             summary: VectorizeSummary) -> list[StoredProduct]:
    """Stage 4: the objects to write: new vectors, stored ones the plan keeps (unchanged text or image, behaviour),
    and each image vector's hubness penalty (recomputed for a reused vector, so it always matches)."""
    if not items:
        return []
    with timed(summary, "fetch_stored"):
        old = store.vectors([p.product_id for p in items])
    vectors: dict[str, dict[str, np.ndarray]] = {}
    notes: dict[str, str] = {}
    for p in items:
        vectors[p.product_id], note = _carry_over(p, old.get(p.product_id, {}))
        if note:
            notes[p.product_id] = note
    penalties = _penalties(vectors, hubness)
    out = [StoredProduct(p.product, p.fingerprints, vectors[p.product_id], p.image_error or notes.get(p.product_id, ""),
                         penalties.get(p.product_id, 0.0)) for p in items]
    summary.without_image += sum(1 for i in out if "image" not in i.vectors)
    return out


def _carry_over(p: Prepared, kept: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], str]:
    """The product's vectors with the stored ones this run keeps; a note when a kept image has no vector."""
    out, note = dict(p.vectors), ""
    if not p.plan.encode_text and "text" in kept:
        out["text"] = kept["text"]
    if p.plan.keep_old_image and "image" not in out:
        if "image" in kept:
            out["image"] = kept["image"]
        elif p.fingerprints.image != NO_IMAGE:
            note = "image could not be decoded (unchanged since an earlier run)"
    if "behavior" in kept:
        out["behavior"] = kept["behavior"]
    return out, note


def _penalties(vectors: dict[str, dict[str, np.ndarray]], hubness: HubnessCorrection | None) -> dict[str, float]:
    """The hubness penalty of every image vector about to be written (none without a correction)."""
    with_image = [pid for pid, v in vectors.items() if "image" in v]
    if hubness is None or not with_image:
        return {}
    values = hubness.penalty(np.stack([vectors[pid]["image"] for pid in with_image]))
    return {pid: float(v) for pid, v in zip(with_image, values, strict=True)}


def write(items: list[StoredProduct], store: ProductStore, batch_size: int, summary: VectorizeSummary) -> None:
    """Stage 5: idempotent upserts (uuid5 ids); a failed object raises StoreError naming it, counted as failed."""
    with timed(summary, "write"):
        try:
            summary.written += store.upsert(items, batch_size)
        except RecommenderError:
            summary.failed += len(items)
            raise


def delete_stale(store: ProductStore, stored_ids: set[str], seen_ids: set[str], max_fraction: float,
                 allow_mass_delete: bool, summary: VectorizeSummary) -> None:
    """Delete stored products the catalog no longer has, unless that is over ``max_fraction`` of the store."""
    stale = sorted(stored_ids - seen_ids)
    if not stale:
        return
    if len(stale) > max_fraction * len(stored_ids) and not allow_mass_delete:
        raise MassDeleteRefused(
            f"{len(stale)} of {len(stored_ids)} stored products are no longer in the catalog "
            f"(over the {max_fraction:.0%} limit); nothing was deleted. "
            "If the catalog really shrank, re-run with --allow-mass-delete.")
    summary.deleted += store.delete(stale)


# An engine's part of a run: stream the reader's products through the stages, updating the summary and the bar.
Execute = Callable[[CatalogReader, dict[str, Fingerprints], VectorizeSummary, "tqdm[Any]"], None]


def run_stages(store: ProductStore, settings: VectorizeSettings, catalog_dir: Path, progress: bool,
               allow_mass_delete: bool, execute: Execute) -> VectorizeSummary:
    """One run, whichever engine executes the stages: read the stored fingerprints, let the engine bring every
    catalog product up to date, then delete what vanished. Returns the summary (raises after a failed write)."""
    summary = VectorizeSummary()
    started = time.perf_counter()
    with timed(summary, "scan_store"):
        store.ensure_collection()
        stored = store.fingerprints()
    reader = CatalogReader(catalog_dir)
    bar = tqdm(total=count_rows(catalog_dir), unit="product", desc="vectorize", disable=not progress)
    try:
        execute(reader, stored, summary, bar)
    finally:
        bar.close()
        summary.rows_read, summary.errors = reader.rows_read, list(reader.errors)
        summary.invalid = len(reader.errors)
    with timed(summary, "delete"):
        delete_stale(store, set(stored), reader.seen_ids, settings.max_delete_fraction, allow_mass_delete, summary)
    summary.add_time("total", time.perf_counter() - started)
    return summary
