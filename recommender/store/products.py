"""The product store in Weaviate (the ``store`` package is the only one that imports ``weaviate``).

One object per product, id = uuid5(product_id), named vectors ``text``, ``image`` and ``behavior``
(cosine HNSW, vectors supplied by us), filterable properties, and the fingerprints that let jobs skip
unchanged work. Every batch write checks the per-object errors of its request and raises if any object failed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import weaviate
from weaviate.classes.config import ConsistencyLevel
from weaviate.classes.data import DataObject
from weaviate.classes.query import Filter, MetadataQuery
from weaviate.exceptions import WeaviateBaseError, WeaviateInsertManyAllFailedError

from recommender.catalog.fingerprints import Fingerprints
from recommender.config import WeaviateSettings
from recommender.domain import Product, ProductFilter
from recommender.errors import StoreError, StoreUnavailable
from recommender.store.client import _errors, connect, endpoints, looks_unreachable
from recommender.store.filters import weaviate_filter
from recommender.store.retry import bounded as _bounded
from recommender.store.retry import retried_write
from recommender.store.schema import (
    _FINGERPRINT_PROPS,
    BM25_PROPERTIES,
    PROPERTIES,
    VECTOR_NAMES,
    Hit,
    StoredProduct,
    collection_config,
    product_from_properties,
    product_properties,
    product_uuid,
)

log = logging.getLogger(__name__)


class ProductStore:
    """Products in one Weaviate collection. Construct with a connected client; ``close()`` when done.

    Reads use ``read_consistency`` and writes ``write_consistency`` (how many replicas must answer); with several
    nodes configured, a call that finds its node unreachable moves the store to the next node that answers.
    """

    def __init__(self, client: weaviate.WeaviateClient, collection: str = "Product",
                 query_timeout_s: float = 0.0, retries: int = 0, settings: WeaviateSettings | None = None,
                 node: int = 0) -> None:
        self._client = client
        self.name = collection
        self.query_timeout_s = query_timeout_s
        self.retries = retries
        self.settings = settings or WeaviateSettings(collection=collection)
        self.retry_window_s = self.settings.retry_window_s if retries > 0 else 0.0
        self.node = node
        self._lock = threading.Lock()
        self._closed = False
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="weaviate-query")

    @classmethod
    def open(cls, settings: WeaviateSettings, job: bool = False) -> ProductStore:
        """Connect per settings (the first node that answers) and return a store for the configured collection;
        ``job``: the batch jobs' longer read deadline, retries and retry window instead of the request path's."""
        timeout_s, retries = (settings.job_timeout_s, settings.job_retries) if job else (settings.query_timeout_s, 0)
        client, node = connect(settings, read_timeout_s=max(timeout_s, settings.connect_timeout_s))
        return cls(client, settings.collection, timeout_s, retries, settings, node)

    def failover(self) -> bool:
        """Reconnect to the next node that answers (after the current one); False with a single node or none up."""
        if len(endpoints(self.settings)) < 2:
            return False
        with self._lock:
            try:
                client, node = connect(self.settings, first=self.node + 1,
                                       read_timeout_s=max(self.query_timeout_s, self.settings.connect_timeout_s))
            except StoreUnavailable as exc:
                log.warning("no other Weaviate node answers: %s", exc)
                return False
            old, self._client, self.node = self._client, client, node
        log.warning("Weaviate: moved to node %s (%s)", node, endpoints(self.settings)[node].url)
        # a dead node's channel may take a while to close: never on the caller's time
        threading.Thread(target=old.close, name="weaviate-close", daemon=True).start()
        return True

    def close(self) -> None:
        """Release the client's connections (again: nothing)."""
        with self._lock:
            closed, self._closed = self._closed, True
        if closed:
            return
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._client.close()

    def is_ready(self) -> bool:
        """True when the server answers its readiness probe (never raises)."""
        try:
            return bool(self._client.is_ready())
        except (WeaviateBaseError, ConnectionError, OSError):
            return False

    def __enter__(self) -> ProductStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def _collection(self) -> Any:
        return self._client.collections.get(self.name)

    @property
    def _reader(self) -> Any:
        """The collection for reads, at the read consistency level."""
        level = ConsistencyLevel(self.settings.read_consistency.upper())
        return self._client.collections.get(self.name).with_consistency_level(level)

    @property
    def _writer(self) -> Any:
        """The collection for writes, at the write consistency level."""
        level = ConsistencyLevel(self.settings.write_consistency.upper())
        return self._client.collections.get(self.name).with_consistency_level(level)

    def ensure_collection(self) -> None:
        """Create the collection with its named vectors and properties if it does not exist; add the properties
        a collection made by an earlier version lacks."""
        with _errors(f"create collection {self.name}"):
            if self._client.collections.exists(self.name):
                self._add_missing_properties()
                return
            self._client.collections.create(self.name, **collection_config(self.settings))

    def layout(self) -> dict[str, Any]:
        """How the collection is laid out, as Weaviate reports it: shards, replication, compression per vector."""
        with _errors(f"read the configuration of {self.name}"):
            config = self._collection.config.get()
        quantizers = {name: vc.vector_index_config.quantizer for name, vc in (config.vector_config or {}).items()}
        return {"shards": config.sharding_config.desired_count if config.sharding_config else None,
                "replication_factor": config.replication_config.factor,
                "async_replication": bool(config.replication_config.async_enabled),
                "compression": {name: type(q).__name__.strip("_").removesuffix("Config").lower() if q else "none"
                                for name, q in quantizers.items()}}

    def _add_missing_properties(self) -> None:
        have = {p.name for p in self._collection.config.get().properties}
        for prop in PROPERTIES:
            if prop.name not in have:
                self._collection.config.add_property(prop)

    def drop(self) -> None:
        """Delete the whole collection (tests, `vectorize --rebuild`)."""
        with _errors(f"delete collection {self.name}"):
            self._client.collections.delete(self.name)

    @_bounded
    def count(self) -> int:
        """Number of objects in the collection (0 when it does not exist yet)."""
        with _errors("count objects"):
            if not self._client.collections.exists(self.name):
                return 0
            return int(self._reader.aggregate.over_all(total_count=True).total_count or 0)

    def fingerprints(self) -> dict[str, Fingerprints]:
        """Stored fingerprints by product id, read by streaming over the whole collection."""
        out: dict[str, Fingerprints] = {}
        with _errors("read stored fingerprints"):
            for obj in self._reader.iterator(return_properties=["product_id", *_FINGERPRINT_PROPS]):
                p = obj.properties
                out[str(p["product_id"])] = Fingerprints(
                    str(p.get("fp_text") or ""), str(p.get("fp_image") or ""),
                    str(p.get("fp_properties") or ""))
        return out

    @_bounded
    def vectors(self, product_ids: Sequence[str], names: Sequence[str] = VECTOR_NAMES
                ) -> dict[str, dict[str, np.ndarray]]:
        """Stored named vectors of the given products (missing products and vectors are left out)."""
        if not product_ids:
            return {}
        out: dict[str, dict[str, np.ndarray]] = {}
        with _errors("fetch vectors"):
            res = self._reader.query.fetch_objects(
                filters=Filter.by_id().contains_any([product_uuid(p) for p in product_ids]),
                include_vector=list(names), return_properties=["product_id"], limit=len(product_ids))
        for obj in res.objects:
            vecs = {k: np.asarray(v, dtype=np.float32) for k, v in (obj.vector or {}).items() if k in names}
            out[str(obj.properties["product_id"])] = vecs
        return out

    @_bounded
    def items(self, product_ids: Sequence[str], names: Sequence[str] = VECTOR_NAMES
              ) -> dict[str, tuple[dict[str, Any], dict[str, np.ndarray]]]:
        """Properties and named vectors of the given products in one round trip (missing ones left out)."""
        out: dict[str, tuple[dict[str, Any], dict[str, np.ndarray]]] = {}
        unique = list(dict.fromkeys(product_ids))
        for start in range(0, len(unique), 1000):
            part = unique[start:start + 1000]
            with _errors("fetch products"):
                res = self._reader.query.fetch_objects(
                    filters=Filter.by_id().contains_any([product_uuid(p) for p in part]),
                    include_vector=list(names), limit=len(part))
            for obj in res.objects:
                vecs = {k: np.asarray(v, dtype=np.float32) for k, v in (obj.vector or {}).items() if k in names}
                out[str(obj.properties["product_id"])] = (dict(obj.properties), vecs)
        return out

    def upsert(self, items: Sequence[StoredProduct], batch_size: int = 100) -> int:
        """Write (insert or replace) objects in batches; raise StoreError naming any that failed.

        One synchronous ``insert_many`` request per batch, not the client's background batcher: when Weaviate
        goes away mid-job the batcher keeps retrying without end and the job hangs; a request gives up after the
        client's retries and the job fails with a clear error (and resumes on the next run). A job retries a batch
        its node or replicas could not take (same uuid5 ids: a repeat replaces, never duplicates).
        """
        written = 0
        for start in range(0, len(items), max(1, batch_size)):
            part = items[start:start + batch_size]
            written += retried_write(self, lambda part=part: self._insert_batch(part))  # type: ignore[misc]
        return written

    def _insert_batch(self, part: Sequence[StoredProduct]) -> int:
        objects = [DataObject(properties=product_properties(item), uuid=product_uuid(item.product.product_id),
                              vector={k: v.tolist() for k, v in item.vectors.items()}) for item in part]
        ids = ", ".join(item.product.product_id for item in part[:5])
        try:
            with _errors("write objects"):
                result = self._writer.data.insert_many(objects)
        except StoreError as exc:
            refused = isinstance(exc.__cause__, WeaviateInsertManyAllFailedError)
            if refused and not isinstance(exc, StoreUnavailable):
                raise StoreError(f"all {len(part)} objects failed to write ({ids}…): {exc.__cause__}") from exc
            raise
        if result.has_errors:
            errors = list(result.errors.items())
            sample = "; ".join(f"{part[i].product.product_id}: {e.message}" for i, e in errors[:5])
            cls = StoreUnavailable if all(looks_unreachable(e.message) for _, e in errors) else StoreError
            raise cls(f"{len(result.errors)} of {len(part)} objects failed to write: {sample}")
        return len(part)

    def set_vector(self, name: str, vectors: Mapping[str, np.ndarray]) -> int:
        """Set one named vector of existing objects, keeping their properties and other vectors.

        A PATCH per object (Weaviate merges named vectors on update; a batch insert would replace the
        whole object). Raises StoreError naming the product when an object is missing or refused.
        """
        for pid, vec in vectors.items():
            vector = {name: np.asarray(vec, np.float32).tolist()}

            def patch(pid: str = pid, vector: dict[str, list[float]] = vector) -> None:
                with _errors(f"set the {name} vector of {pid}"):
                    self._writer.data.update(uuid=product_uuid(pid), vector=vector)
            retried_write(self, patch)
        return len(vectors)

    def clear_vector(self, name: str, product_ids: Iterable[str]) -> int:
        """Remove one named vector from objects (read, then replace without it); absent products are skipped."""
        collection, cleared = self._writer, 0
        for pid in product_ids:
            with _errors(f"remove the {name} vector of {pid}"):
                obj = collection.query.fetch_object_by_id(product_uuid(pid), include_vector=True)
                if obj is None or name not in (obj.vector or {}):
                    continue
                kept = {k: v for k, v in (obj.vector or {}).items() if k != name}
                collection.data.replace(uuid=product_uuid(pid), properties=obj.properties, vector=kept)
            cleared += 1
        return cleared

    def ids_with_vector(self, name: str) -> set[str]:
        """Ids of the products that currently have the named vector."""
        out: set[str] = set()
        with _errors(f"list products with a {name} vector"):
            for obj in self._reader.iterator(include_vector=[name], return_properties=["product_id"]):
                if name in (obj.vector or {}):
                    out.add(str(obj.properties["product_id"]))
        return out

    def delete(self, product_ids: Iterable[str]) -> int:
        """Delete products by id; returns how many were deleted (a job retries a chunk its node could not take)."""
        ids = [product_uuid(p) for p in product_ids]
        deleted = 0
        for start in range(0, len(ids), 1000):
            deleted += retried_write(self, lambda chunk=ids[start:start + 1000]: self._delete_chunk(chunk))  # type: ignore[misc]
        return deleted

    def _delete_chunk(self, chunk: list[str]) -> int:
        with _errors("delete objects"):
            res = self._writer.data.delete_many(where=Filter.by_id().contains_any(chunk))
        if res.failed:
            raise StoreError(f"{res.failed} objects failed to delete")
        return int(res.successful)

    @_bounded
    def near_vector(self, vector: np.ndarray, target: str, k: int = 10,
                    filters: ProductFilter | None = None, properties: Sequence[str] | None = None) -> list[Hit]:
        """The k products whose ``target`` vector is nearest (cosine) to ``vector``, among those ``filters`` keep.

        ``properties`` limits what comes back (ids only is fastest); None returns them all.
        """
        wanted = list(dict.fromkeys(["product_id", *properties])) if properties is not None else None
        with _errors(f"near-vector query on {target}"):
            res = self._reader.query.near_vector(
                near_vector=np.asarray(vector, dtype=np.float32).tolist(), target_vector=target, limit=k,
                filters=weaviate_filter(filters), return_metadata=MetadataQuery(distance=True),
                return_properties=wanted)
        return [Hit(str(o.properties["product_id"]), float(o.metadata.distance or 0.0), o.properties)
                for o in res.objects]

    @_bounded
    def hybrid(self, query: str, vector: np.ndarray | None, target: str = "text", k: int = 10,
               filters: ProductFilter | None = None, alpha: float = 0.5,
               properties: Sequence[str] = BM25_PROPERTIES) -> list[Hit]:
        """The k products best matching ``query`` by Weaviate's hybrid search: BM25 over ``properties`` fused
        with the cosine of ``vector`` to each product's ``target`` vector (``alpha`` = weight of the vector part),
        among those ``filters`` keep; without a vector, BM25 alone. ``Hit.distance`` is 1 − the score (smaller is
        better)."""
        with _errors(f"hybrid query on {target}"):
            if vector is None:  # words only: plain BM25 (no server-side vectorizer to embed the query)
                res = self._reader.query.bm25(
                    query=query, limit=k, query_properties=list(properties), filters=weaviate_filter(filters),
                    return_metadata=MetadataQuery(score=True))
            else:
                res = self._reader.query.hybrid(
                    query=query, alpha=alpha, limit=k, target_vector=target,
                    vector=np.asarray(vector, dtype=np.float32).tolist(), query_properties=list(properties),
                    filters=weaviate_filter(filters), return_metadata=MetadataQuery(score=True))
        return [Hit(str(o.properties["product_id"]), 1.0 - float(o.metadata.score or 0.0), o.properties)
                for o in res.objects]

    @_bounded
    def count_matching(self, filters: ProductFilter | None) -> int:
        """How many products ``filters`` keeps (all of them for None)."""
        with _errors("count matching objects"):
            res = self._reader.aggregate.over_all(filters=weaviate_filter(filters), total_count=True)
        return int(res.total_count or 0)

    @_bounded
    def records(self, product_ids: Sequence[str]) -> dict[str, Product]:
        """The catalog records of the given products (missing ones left out), one round trip per 1,000."""
        out: dict[str, Product] = {}
        unique = list(dict.fromkeys(product_ids))
        for start in range(0, len(unique), 1000):
            part = unique[start:start + 1000]
            with _errors("fetch records"):
                res = self._reader.query.fetch_objects(
                    filters=Filter.by_id().contains_any([product_uuid(p) for p in part]), limit=len(part))
            for obj in res.objects:
                record = product_from_properties(obj.properties)
                out[record.product_id] = record
        return out

    @_bounded
    def find(self, filters: ProductFilter, k: int = 100) -> list[Product]:
        """Up to k records that ``filters`` keeps, in no particular order (e.g. the other colours of a design)."""
        with _errors("filtered fetch"):
            res = self._reader.query.fetch_objects(filters=weaviate_filter(filters), limit=k)
        return [product_from_properties(o.properties) for o in res.objects]

    @_bounded
    def get(self, product_id: str, with_vectors: bool = False) -> dict[str, Any] | None:
        """A product's properties (and named vectors when asked), or None if absent."""
        with _errors(f"fetch {product_id}"):
            obj = self._reader.query.fetch_object_by_id(
                product_uuid(product_id), include_vector=list(VECTOR_NAMES) if with_vectors else False)
        if obj is None:
            return None
        out = dict(obj.properties)
        if with_vectors:
            out["_vectors"] = {k: np.asarray(v, dtype=np.float32) for k, v in (obj.vector or {}).items()}
        return out

    def iter_records(self) -> Iterator[Product]:
        """Every stored product's catalog record, streamed."""
        with _errors("list records"):
            for obj in self._reader.iterator():
                yield product_from_properties(obj.properties)

    def iter_ids(self) -> Iterator[str]:
        """Every stored product id."""
        with _errors("list product ids"):
            for obj in self._reader.iterator(return_properties=["product_id"]):
                yield str(obj.properties["product_id"])


