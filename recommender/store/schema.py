"""The stored shape of a product: Weaviate properties, named vectors, object ids, and records read back.

Written objects and records read back are defined side by side so the two directions cannot drift.
"""

from __future__ import annotations

import json
import uuid
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from weaviate.classes.config import Configure, DataType, Property, Tokenization, VectorDistances

from recommender.catalog.fingerprints import Fingerprints
from recommender.config import WeaviateSettings
from recommender.domain import CATEGORY_SEPARATOR, Product
from recommender.store.filters import filter_keys

VECTOR_NAMES = ("text", "image", "behavior")
_NAMESPACE = uuid.UUID("6f1b7a52-3c1e-5d4b-9f0a-7d3e2b1c4a55")
_FINGERPRINT_PROPS = ("fp_text", "fp_image", "fp_properties")
BM25_PROPERTIES = ("title^2", "description")  # what hybrid search matches words against (titles count double)


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
    # Case-folded filter keys (store/filters.py): colour, brand, every category level, column=value pairs.
    _text("f_color"),
    _text("f_brand"),
    Property(name="f_category", data_type=DataType.TEXT_ARRAY, tokenization=Tokenization.FIELD,
             index_filterable=True, index_searchable=False),
    Property(name="f_attrs", data_type=DataType.TEXT_ARRAY, tokenization=Tokenization.FIELD,
             index_filterable=True, index_searchable=False),
    # Subtracted from a text query's cosine with the image vector (alignment/hubness.py); 0 = no correction.
    Property(name="image_penalty", data_type=DataType.NUMBER, index_filterable=False, index_range_filters=False),
    *(_text(name) for name in _FINGERPRINT_PROPS),
]


def collection_config(settings: WeaviateSettings) -> dict[str, Any]:
    """Keyword arguments of ``collections.create``: the named vectors (cosine HNSW, each with its configured
    compression), the properties, and on a cluster the shard count and the replication factor (asynchronous
    replication repairs a replica that missed writes while its node was down)."""
    config: dict[str, Any] = {
        "vector_config": [Configure.Vectors.self_provided(name=name, vector_index_config=Configure.VectorIndex.hnsw(
            distance_metric=VectorDistances.COSINE, quantizer=_quantizer(settings, name))) for name in VECTOR_NAMES],
        "properties": PROPERTIES,
    }
    if settings.shards:
        config["sharding_config"] = Configure.sharding(desired_count=settings.shards)
    if settings.replication_factor > 1 or settings.async_replication:
        with warnings.catch_warnings():
            # Dep030: servers >= 1.38 drop the field (async replication is then on by default); the pinned
            # v1.35.2 still needs it, so the deprecation does not apply here
            warnings.filterwarnings("ignore", message="Dep030", category=DeprecationWarning)
            config["replication_config"] = Configure.replication(
                factor=settings.replication_factor, async_enabled=settings.async_replication or None)
    return config


def _quantizer(settings: WeaviateSettings, vector: str) -> Any:
    """The compression of one named vector: RQ (8 bits a dimension, no training), PQ (trained codebook), BQ (1 bit
    a dimension), SQ (trained 8-bit scalar) or none; lossy ones rescore their candidates with the full vectors."""
    kind, limit = str(getattr(settings, f"compression_{vector}")).lower(), settings.compression_training_limit
    quantizers = {"rq": lambda: Configure.VectorIndex.Quantizer.rq(),
                  "pq": lambda: Configure.VectorIndex.Quantizer.pq(training_limit=limit),
                  "bq": lambda: Configure.VectorIndex.Quantizer.bq(),
                  "sq": lambda: Configure.VectorIndex.Quantizer.sq(training_limit=limit)}
    return quantizers[kind]() if kind in quantizers else None


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
        **filter_keys(p),
    }


def product_from_properties(props: Mapping[str, Any]) -> Product:
    """The catalog record of a stored object (what answers and cards are built from)."""
    try:
        attributes = json.loads(str(props.get("attributes_json") or "{}"))
    except ValueError:
        attributes = {}
    if not isinstance(attributes, dict):
        attributes = {}
    path = str(props.get("category") or "")
    price = props.get("price")
    return Product(
        product_id=str(props["product_id"]), title=str(props.get("title") or ""),
        description=str(props.get("description") or ""),
        category=tuple(level for level in path.split(CATEGORY_SEPARATOR) if level) if path else (),
        color=str(props.get("color") or ""), brand=str(props.get("brand") or ""),
        price=float(price) if isinstance(price, int | float) else None, in_stock=bool(props.get("in_stock", True)),
        image=str(props.get("image") or "") or None,
        attributes=tuple(sorted((str(k), str(v)) for k, v in attributes.items())),
    )
