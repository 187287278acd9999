"""Attribute filters pushed down into a real Weaviate decide exactly what ``ProductFilter.keeps`` decides in
Python: colour, brand, any category level, catalog columns and words of the text, each also negated."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import numpy as np
import pytest

from recommender.catalog.fingerprints import Fingerprints
from recommender.catalog.reader import load_catalog
from recommender.config import WeaviateSettings
from recommender.domain import FieldCondition, Product, ProductFilter
from recommender.store.products import ProductStore, StoredProduct
from tests.integration.conftest import FIXTURES

pytestmark = pytest.mark.integration

CATALOG = load_catalog(FIXTURES).products


@pytest.fixture(scope="module")
def fixture_store(fixtures_weaviate: WeaviateSettings) -> Iterator[ProductStore]:
    with ProductStore.open(fixtures_weaviate) as store:
        yield store


FILTERS = [
    ProductFilter(conditions=(FieldCondition("color", ("Navy",)),)),  # case differs from the catalog's "navy"
    ProductFilter(conditions=(FieldCondition("color", ("black", "white")),)),
    ProductFilter(conditions=(FieldCondition("category", ("Shoes",)), FieldCondition("color", ("black",), True))),
    ProductFilter(conditions=(FieldCondition("category", ("Men",)), FieldCondition("category", ("Jeans",)))),
    ProductFilter(in_stock=True, conditions=(FieldCondition("brand", ("northwind",)),)),
    ProductFilter(price_max=50.0, conditions=(FieldCondition("text", ("linen",)),)),
    ProductFilter(conditions=(FieldCondition("category", ("Tops",)), FieldCondition("text", ("linen",), True))),
    ProductFilter(conditions=(FieldCondition("text", ("skinny jeans",)),)),
]


@pytest.mark.parametrize("wanted", FILTERS, ids=[str(i) for i in range(len(FILTERS))])
def test_store_filter_keeps_exactly_what_python_keeps(fixture_store: ProductStore, wanted: ProductFilter) -> None:
    expected = {p.product_id for p in CATALOG if wanted.keeps(p)}
    found = fixture_store.find(wanted, k=1000)
    # a phrase is pushed down as "all its words"; callers re-check with keeps(), as here
    got = {p.product_id for p in found if wanted.keeps(p)}
    assert expected, "the filter should match something in the fixtures"
    assert got == expected
    assert fixture_store.count_matching(wanted) >= len(expected)
    if not any(c.field == "text" and len(c.values[0].split()) > 1 for c in wanted.conditions):
        assert {p.product_id for p in found} == expected  # exact when nothing needs re-checking
        assert fixture_store.count_matching(wanted) == len(expected)


def test_hybrid_search_applies_filters_and_finds_title_words(fixture_store: ProductStore) -> None:
    target = next(p for p in CATALOG if p.color and p.in_stock)
    only = ProductFilter(in_stock=True, conditions=(FieldCondition("color", (target.color,)),))
    hits = fixture_store.hybrid(target.title, None, k=10, filters=only)
    assert hits and all(h.properties["color"] == target.color for h in hits)
    assert target.product_id in [h.product_id for h in hits[:3]]
    records = fixture_store.records([h.product_id for h in hits])
    assert all(only.keeps(records[h.product_id]) for h in hits)


def test_catalog_columns_are_filterable_and_records_round_trip(weaviate_server) -> None:  # type: ignore[no-untyped-def]
    settings = WeaviateSettings(host=weaviate_server.host, http_port=weaviate_server.http_port,
                                grpc_port=weaviate_server.grpc_port, collection=f"Attrs_{uuid.uuid4().hex[:10]}")
    rng = np.random.default_rng(0)
    products = [Product(f"A{i}", f"Shoe {i}", category=("Men", "Footwear", "Sandal", "Sandals"), color="Navy Blue",
                        attributes=(("season", "Summer"), ("usage", "Casual" if i % 2 else "Formal")), price=None)
                for i in range(6)]
    with ProductStore.open(settings) as store:
        store.ensure_collection()
        try:
            vec = {n: rng.normal(size=8).astype(np.float32) for n in ("text",)}
            store.upsert([StoredProduct(p, Fingerprints("t", "", "p"), vec) for p in products])
            casual = ProductFilter(conditions=(FieldCondition("attr:usage", ("casual",)),
                                               FieldCondition("category", ("sandals",))))
            assert {p.product_id for p in store.find(casual)} == {"A1", "A3", "A5"}
            not_formal = ProductFilter(conditions=(FieldCondition("attr:usage", ("Formal",), True),))
            assert {p.product_id for p in store.find(not_formal)} == {"A1", "A3", "A5"}
            blue = ProductFilter(conditions=(FieldCondition("color", ("navy blue",)),))
            assert store.count_matching(blue) == 6
            back = store.records(["A1", "missing"])
            assert list(back) == ["A1"] and back["A1"] == products[1]
        finally:
            store.drop()


def test_hybrid_with_a_vector_fuses_words_and_the_text_vector(fixture_store: ProductStore, text_encoder) -> None:  # type: ignore[no-untyped-def]
    target = next(p for p in CATALOG if p.in_stock and "jeans" in p.title.lower())
    vector = text_encoder.encode_batch([target.title])[0]
    jeans = ProductFilter(conditions=(FieldCondition("category", ("Jeans",)),))
    hits = fixture_store.hybrid(target.title, vector, "text", k=5, filters=jeans, alpha=0.5)
    assert hits[0].product_id == target.product_id
    records = fixture_store.records([h.product_id for h in hits])
    assert all(jeans.keeps(r) for r in records.values())
