"""The product store in Weaviate: the only module that imports ``weaviate``.

One object per product, id = uuid5(product_id), named vectors ``text``, ``image`` and ``behavior``
(cosine HNSW, vectors supplied by us), filterable properties, and the fingerprints that let jobs skip
unchanged work. Every batch write checks the per-object errors of its request and raises if any object failed.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, Concatenate, ParamSpec, TypeVar
from urllib.parse import urlparse

import numpy as np
import weaviate
from weaviate.classes.config import Configure, DataType, Property, Tokenization, VectorDistances
from weaviate.classes.data import DataObject
from weaviate.classes.query import Filter, MetadataQuery
from weaviate.exceptions import WeaviateBaseError, WeaviateInsertManyAllFailedError

from recommender.catalog.fingerprints import Fingerprints
from recommender.config import WeaviateSettings
from recommender.domain import CATEGORY_SEPARATOR, Product, ProductFilter
from recommender.errors import StoreError, StoreUnavailable

VECTOR_NAMES = ("text", "image", "behavior")
_NAMESPACE = uuid.UUID("6f1b7a52-3c1e-5d4b-9f0a-7d3e2b1c4a55")
_FINGERPRINT_PROPS = ("fp_text", "fp_image", "fp_properties")


def product_uuid(product_id: str) -> str:
    """Weaviate object id of a product: uuid5 of its id, stable across runs and machines."""
    return str(uuid.uuid5(_NAMESPACE, product_id))


def _text(name: str, *, searchable: bool = False) -> Property:
    tokenization = Tokenization.WORD if searchable else Tokenization.FIELD
    return Property(name=name, data_type=DataType.TEXT, tokenization=tokenization,
                    index_searchable=searchable, index_filterable=True)


PROPERTIES = [
    _text("product_id"),
    _text("title", searchable=True),
    _text("description", searchable=True),
    _text("category"),
    _text("category_l1"),
    _text("category_l2"),
    _text("category_l3"),
    _text("color"),
    _text("brand"),
    Property(name="price", data_type=DataType.NUMBER, index_range_filters=True),
    Property(name="in_stock", data_type=DataType.BOOL),
    _text("image"),
    _text("image_error"),
    _text("variant_group"),
    Property(name="attributes_json", data_type=DataType.TEXT, index_filterable=False,
             index_searchable=False),
    # Subtracted from a text query's cosine with the image vector (alignment/hubness.py); 0 = no correction.
    Property(name="image_penalty", data_type=DataType.NUMBER, index_filterable=False, index_range_filters=False),
    *(_text(name) for name in _FINGERPRINT_PROPS),
]


@dataclass(frozen=True)
class StoredProduct:
    """An object to write: the product, its fingerprints, the vectors it has, any image problem, and the
    hubness penalty of its image vector for text queries."""

    product: Product
    fingerprints: Fingerprints
    vectors: Mapping[str, np.ndarray] = field(default_factory=dict)
    image_error: str = ""
    image_penalty: float = 0.0


@dataclass(frozen=True)
class Hit:
    """One near-vector result."""

    product_id: str
    distance: float
    properties: Mapping[str, Any] = field(default_factory=dict)


def weaviate_filter(f: ProductFilter | None) -> Any:
    """The ``weaviate.classes.query.Filter`` of a ProductFilter, or None when it keeps everything."""
    if f is None or f.is_empty:
        return None
    parts: list[Any] = []
    levels = f.category
    if 0 < len(levels) <= 3:
        parts += [Filter.by_property(f"category_l{i + 1}").equal(level) for i, level in enumerate(levels)]
    elif levels:  # deeper than the stored level columns: the whole path, or the path plus more levels
        path = CATEGORY_SEPARATOR.join(levels)
        parts.append(Filter.any_of([Filter.by_property("category").equal(path),
                                    Filter.by_property("category").like(f"{path}{CATEGORY_SEPARATOR}*")]))
    if f.price_min is not None:
        parts.append(Filter.by_property("price").greater_or_equal(float(f.price_min)))
    if f.price_max is not None:
        parts.append(Filter.by_property("price").less_or_equal(float(f.price_max)))
    if f.in_stock is not None:
        parts.append(Filter.by_property("in_stock").equal(f.in_stock))
    return parts[0] if len(parts) == 1 else Filter.all_of(parts)


def product_properties(item: StoredProduct) -> dict[str, Any]:
    """The Weaviate properties of a product object."""
    p = item.product
    levels = [*p.category, "", "", ""]
    return {
        "product_id": p.product_id, "title": p.title, "description": p.description,
        "category": p.category_path, "category_l1": levels[0], "category_l2": levels[1],
        "category_l3": levels[2], "color": p.color, "brand": p.brand, "price": p.price,
        "in_stock": p.in_stock, "image": p.image or "", "image_error": item.image_error,
        "variant_group": p.variant_group, "attributes_json": json.dumps(dict(p.attributes), sort_keys=True),
        "fp_text": item.fingerprints.text, "fp_image": item.fingerprints.image,
        "fp_properties": item.fingerprints.properties, "image_penalty": float(item.image_penalty),
    }


def connect(settings: WeaviateSettings) -> weaviate.WeaviateClient:
    """A connected client: to ``settings.url`` when set, else to the local server on host/ports."""
    try:
        if settings.url:
            return _connect_url(settings)
        # skip_init_checks: the client would otherwise ask the internet (PyPI) for its latest version.
        return weaviate.connect_to_local(host=settings.host, port=settings.http_port,
                                         grpc_port=settings.grpc_port, skip_init_checks=True)
    except WeaviateBaseError as exc:
        where = settings.url or f"http://{settings.host}:{settings.http_port}"
        raise StoreUnavailable(f"cannot reach Weaviate at {where}: {exc}") from exc


def _connect_url(settings: WeaviateSettings) -> weaviate.WeaviateClient:
    http = urlparse(str(settings.url))
    secure = http.scheme == "https"
    grpc_text = settings.grpc_url or ""
    grpc = urlparse(grpc_text if "//" in grpc_text else f"//{grpc_text}")
    auth = weaviate.auth.AuthApiKey(settings.api_key) if settings.api_key else None
    return weaviate.connect_to_custom(
        http_host=http.hostname or "localhost", http_port=http.port or (443 if secure else 80),
        http_secure=secure, grpc_host=grpc.hostname or http.hostname or "localhost",
        grpc_port=grpc.port or (443 if secure and settings.grpc_url else 50051),
        grpc_secure=secure, auth_credentials=auth, skip_init_checks=True,
    )


P = ParamSpec("P")
R = TypeVar("R")


def _bounded(method: Callable[Concatenate[ProductStore, P], R]) -> Callable[Concatenate[ProductStore, P], R]:
    """Give a read a deadline. The client retries an unreachable gRPC server for about a minute before it
    fails (not configurable); a product page cannot wait that long, so past ``query_timeout_s`` the caller
    gets StoreUnavailable while the abandoned call finishes in the background."""

    @functools.wraps(method)
    def wrapper(self: ProductStore, *args: P.args, **kwargs: P.kwargs) -> R:
        if self.query_timeout_s <= 0:
            return method(self, *args, **kwargs)
        future = self._pool.submit(method, self, *args, **kwargs)
        try:
            return future.result(timeout=self.query_timeout_s)
        except FutureTimeout as exc:
            future.cancel()
            raise StoreUnavailable(f"Weaviate did not answer within {self.query_timeout_s:g}s") from exc

    return wrapper


class ProductStore:
    """Products in one Weaviate collection. Construct with a connected client; ``close()`` when done."""

    def __init__(self, client: weaviate.WeaviateClient, collection: str = "Product",
                 query_timeout_s: float = 0.0) -> None:
        self._client = client
        self.name = collection
        self.query_timeout_s = query_timeout_s
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="weaviate-query")

    @classmethod
    def open(cls, settings: WeaviateSettings) -> ProductStore:
        """Connect per settings and return a store for the configured collection."""
        return cls(connect(settings), settings.collection, settings.query_timeout_s)

    def close(self) -> None:
        """Release the client's connections."""
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

    def ensure_collection(self) -> None:
        """Create the collection with its named vectors and properties if it does not exist; add the properties
        a collection made by an earlier version lacks."""
        with _errors(f"create collection {self.name}"):
            if self._client.collections.exists(self.name):
                self._add_missing_properties()
                return
            hnsw = Configure.VectorIndex.hnsw(distance_metric=VectorDistances.COSINE)
            self._client.collections.create(
                self.name,
                vector_config=[Configure.Vectors.self_provided(name=n, vector_index_config=hnsw)
                               for n in VECTOR_NAMES],
                properties=PROPERTIES,
            )

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
            return int(self._collection.aggregate.over_all(total_count=True).total_count or 0)

    def fingerprints(self) -> dict[str, Fingerprints]:
        """Stored fingerprints by product id, read by streaming over the whole collection."""
        out: dict[str, Fingerprints] = {}
        with _errors("read stored fingerprints"):
            for obj in self._collection.iterator(return_properties=["product_id", *_FINGERPRINT_PROPS]):
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
            res = self._collection.query.fetch_objects(
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
                res = self._collection.query.fetch_objects(
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
        client's retries and the job fails with a clear error (and resumes on the next run).
        """
        collection = self._collection
        written = 0
        for start in range(0, len(items), max(1, batch_size)):
            part = items[start:start + batch_size]
            objects = [DataObject(properties=product_properties(item), uuid=product_uuid(item.product.product_id),
                                  vector={k: v.tolist() for k, v in item.vectors.items()}) for item in part]
            ids = ", ".join(item.product.product_id for item in part[:5])
            try:
                with _errors("write objects"):
                    result = collection.data.insert_many(objects)
            except StoreError as exc:
                refused = isinstance(exc.__cause__, WeaviateInsertManyAllFailedError)
                if refused and not isinstance(exc, StoreUnavailable):
                    raise StoreError(f"all {len(part)} objects failed to write ({ids}…): {exc.__cause__}") from exc
                raise
            if result.has_errors:
                sample = "; ".join(f"{part[i].product.product_id}: {e.message}"
                                   for i, e in list(result.errors.items())[:5])
                raise StoreError(f"{len(result.errors)} of {len(part)} objects failed to write: {sample}")
            written += len(part)
        return written

    def set_vector(self, name: str, vectors: Mapping[str, np.ndarray]) -> int:
        """Set one named vector of existing objects, keeping their properties and other vectors.

        A PATCH per object (Weaviate merges named vectors on update; a batch insert would replace the
        whole object). Raises StoreError naming the product when an object is missing or refused.
        """
        collection = self._collection
        for pid, vec in vectors.items():
            with _errors(f"set the {name} vector of {pid}"):
                collection.data.update(uuid=product_uuid(pid), vector={name: np.asarray(vec, np.float32).tolist()})
        return len(vectors)

    def clear_vector(self, name: str, product_ids: Iterable[str]) -> int:
        """Remove one named vector from objects (read, then replace without it); absent products are skipped."""
        collection, cleared = self._collection, 0
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
            for obj in self._collection.iterator(include_vector=[name], return_properties=["product_id"]):
                if name in (obj.vector or {}):
                    out.add(str(obj.properties["product_id"]))
        return out

    def delete(self, product_ids: Iterable[str]) -> int:
        """Delete products by id; returns how many were deleted."""
        ids = [product_uuid(p) for p in product_ids]
        deleted = 0
        with _errors("delete objects"):
            for start in range(0, len(ids), 1000):
                res = self._collection.data.delete_many(where=Filter.by_id().contains_any(ids[start:start + 1000]))
                if res.failed:
                    raise StoreError(f"{res.failed} objects failed to delete")
                deleted += int(res.successful)
        return deleted

    @_bounded
    def near_vector(self, vector: np.ndarray, target: str, k: int = 10,
                    filters: ProductFilter | None = None, properties: Sequence[str] | None = None) -> list[Hit]:
        """The k products whose ``target`` vector is nearest (cosine) to ``vector``, among those ``filters`` keep.

        ``properties`` limits what comes back (ids only is fastest); None returns them all.
        """
        wanted = list(dict.fromkeys(["product_id", *properties])) if properties is not None else None
        with _errors(f"near-vector query on {target}"):
            res = self._collection.query.near_vector(
                near_vector=np.asarray(vector, dtype=np.float32).tolist(), target_vector=target, limit=k,
                filters=weaviate_filter(filters), return_metadata=MetadataQuery(distance=True),
                return_properties=wanted)
        return [Hit(str(o.properties["product_id"]), float(o.metadata.distance or 0.0), o.properties)
                for o in res.objects]

    @_bounded
    def get(self, product_id: str, with_vectors: bool = False) -> dict[str, Any] | None:
        """A product's properties (and named vectors when asked), or None if absent."""
        with _errors(f"fetch {product_id}"):
            obj = self._collection.query.fetch_object_by_id(
                product_uuid(product_id), include_vector=list(VECTOR_NAMES) if with_vectors else False)
        if obj is None:
            return None
        out = dict(obj.properties)
        if with_vectors:
            out["_vectors"] = {k: np.asarray(v, dtype=np.float32) for k, v in (obj.vector or {}).items()}
        return out

    def iter_ids(self) -> Iterator[str]:
        """Every stored product id."""
        with _errors("list product ids"):
            for obj in self._collection.iterator(return_properties=["product_id"]):
                yield str(obj.properties["product_id"])


class _errors:
    """Map client exceptions to StoreError / StoreUnavailable with what we were doing."""

    def __init__(self, action: str) -> None:
        self.action = action

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if isinstance(exc, WeaviateBaseError | ConnectionError | OSError) and not isinstance(exc, StoreError):
            cls = StoreUnavailable if _looks_unreachable(exc) else StoreError
            raise cls(f"Weaviate: could not {self.action}: {exc}") from exc


def _looks_unreachable(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    return any(w in text for w in ("connect", "unavailable", "refused", "timeout", "timed out", "closed"))
