"""Pure parts of the store: object ids and the property mapping."""

from __future__ import annotations

import json

import numpy as np

from recommender.catalog.fingerprints import Fingerprints
from recommender.domain import Product
from recommender.encoders.base import l2_normalize
from recommender.store.products import StoredProduct, product_properties, product_uuid


def test_uuid5_is_stable_and_distinct() -> None:
    assert product_uuid("0042") == product_uuid("0042")
    assert product_uuid("0042") != product_uuid("42")  # leading zeros matter: ids are strings


def test_properties_carry_levels_attributes_and_fingerprints() -> None:
    p = Product("p1", "Shirt", category=("Men", "Tops", "Shirts", "Oxford"), price=None,
                attributes=(("pattern", "striped"), ("variant_group", "G1")))
    props = product_properties(StoredProduct(p, Fingerprints("t", "i", "x"), image_error="gone"))
    assert (props["category_l1"], props["category_l2"], props["category_l3"]) == ("Men", "Tops", "Shirts")
    assert props["category"] == "Men > Tops > Shirts > Oxford"
    assert props["variant_group"] == "G1" and props["price"] is None and props["image"] == ""
    assert json.loads(props["attributes_json"]) == {"pattern": "striped", "variant_group": "G1"}
    assert (props["fp_text"], props["fp_image"], props["fp_properties"]) == ("t", "i", "x")
    assert props["image_error"] == "gone" and props["image_penalty"] == 0.0
    assert product_properties(StoredProduct(p, Fingerprints("t", "i", "x"), image_penalty=0.25))["image_penalty"] \
        == 0.25
    assert Product("p2", "Hat").variant_group == "p2"


def test_text_for_embedding_uses_words_not_ids() -> None:
    p = Product("p1", "Oxford shirt", description="Crisp cotton.", category=("Men", "Shirts"), color="navy",
                attributes=(("variant_group", "G1"), ("fit", "slim")))
    text = p.text_for_embedding()
    assert text.startswith("Oxford shirt. Men > Shirts. navy. Crisp cotton.")
    assert "fit: slim" in text and "G1" not in text


def test_l2_normalize_handles_zero_rows() -> None:
    out = l2_normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))
    assert out.dtype == np.float32
    assert np.allclose(out[0], [0.6, 0.8]) and np.all(out[1] == 0)
