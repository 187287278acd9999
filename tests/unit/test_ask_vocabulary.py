"""The ask vocabulary on a tiny hand-made catalog: levels, colours, brands, attribute columns, words, JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recommender.ask.text import key, singular
from recommender.ask.vocabulary import MAX_ATTR_VALUES, Vocabulary
from recommender.domain import Product


def product(pid: str, title: str, category: str, color: str, price: float | None = None, description: str = "",
            brand: str = "", in_stock: bool = True, **attrs: str) -> Product:
    """A catalog row as the catalog reader would produce it."""
    return Product(pid, title, description, tuple(category.split(" > ")), color, brand, price, in_stock,
                   attributes=tuple(sorted(attrs.items())))


def shop() -> list[Product]:
    """Priced catalog with a Myntra-like shape: Sandal/Sandals levels, multi-word values, a usage column."""
    return [
        product("1", "Leather sandals", "Men > Footwear > Sandal > Sandals", "Brown", 45.0,
                "Brown leather sandals for summer", "Northwind", usage="Casual", article_type="Sandals"),
        product("2", "Canvas sneakers", "Unisex > Shoes > Sneakers", "Black", 39.0,
                "Black canvas sneakers with rubber soles", "Bolt Athletic", usage="Sports", article_type="Sneakers"),
        product("3", "Slim jeans", "Women > Bottoms > Jeans", "Navy Blue", 59.0, "Stretch denim jeans",
                "Mira Lane", usage="Casual", article_type="Jeans"),
        product("4", "Linen tee", "Men > Tops > T-shirt", "White", 19.0, "Soft linen t-shirt", "Northwind",
                usage="Casual", article_type="Tshirts", variant_group="G1"),
        product("5", "Linen tee", "Men > Tops > T-shirt", "Navy Blue", 19.0, "Soft linen t-shirt", "Northwind",
                usage="Casual", article_type="Tshirts", variant_group="G1"),
        product("6", "Derby shoes", "Men > Footwear > Shoes > Casual Shoes", "Black", 80.0,
                "Leather lace-up shoes", "Harbour & Vale", usage="Smart Casual", article_type="Casual Shoes"),
        product("7", "Floral dress", "Women > Dresses", "Red", 49.0, "Cotton summer dress", "Petalworks",
                usage="Casual", article_type="Dresses", in_stock=False),
        product("8", "Wool trousers", "Men > Bottoms > Trousers", "Grey", 70.0, "Warm wool trousers", "Kestrel",
                usage="Formal", article_type="Trousers"),
        product("9", "Rain jacket", "Boys > Outerwear > Jackets", "Yellow", 35.0, "A hooded jacket for rainy days",
                "Kestrel", usage="Casual", article_type="Jackets"),
    ]


def priceless() -> list[Product]:
    """The same products without prices or brands (like the Myntra catalog)."""
    return [Product(p.product_id, p.title, p.description, p.category, p.color, "", None, p.in_stock,
                    attributes=p.attributes) for p in shop()]


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    return Vocabulary.from_products(iter(shop()))


def test_normalisation_folds_plurals_hyphens_and_synonyms() -> None:
    assert singular("dresses") == "dress" and singular("shoes") == "shoe" and singular("accessories") == "accessory"
    assert key("T-shirts") == key("tshirt") == key("Tees") == key("tee")
    assert key("Navy Blue") == key("navy-blue") == key("NAVY  blue")
    assert key("trainers") == key("Sneakers") and key("pants") == key("Trousers") and key("gray") == key("GREY")
    assert key("mens") == key("Men") == key("gents") and key("ladies") == key("Women")


def test_fields_include_small_attribute_columns_but_not_variant_group(vocab: Vocabulary) -> None:
    assert vocab.fields()[:3] == ("category", "color", "brand")
    assert "attr:usage" in vocab.values and "attr:article_type" in vocab.values
    assert "attr:variant_group" not in vocab.values
    assert "Smart Casual" in vocab.values["attr:usage"]
    assert {"Men", "Footwear", "Sandal", "Sandals", "Casual Shoes"} <= set(vocab.values["category"])
    assert vocab.roots == {"Men", "Unisex", "Women", "Boys"}
    assert vocab.price_range == (19.0, 80.0) and vocab.has_price


def test_attribute_columns_with_many_values_are_dropped() -> None:
    rows = [product(str(i), "Thing", "Men > Tops", "Red", 1.0, sku_code=f"X{i}", fit="Slim" if i % 2 else "Loose")
            for i in range(MAX_ATTR_VALUES + 5)]
    v = Vocabulary.from_products(rows)
    assert "attr:sku_code" not in v.values
    assert v.values["attr:fit"] == ("Loose", "Slim")


def test_lookup_returns_catalog_spellings_category_first(vocab: Vocabulary) -> None:
    sandals = (("category", "Sandal"), ("category", "Sandals"), ("attr:article_type", "Sandals"))
    assert vocab.lookup("sandals") == sandals
    assert vocab.lookup("TEES")[0] == ("category", "T-shirt")
    assert vocab.lookup("trainers") == (("category", "Sneakers"), ("attr:article_type", "Sneakers"))
    assert vocab.lookup("casual") == (("attr:usage", "Casual"),)
    assert vocab.lookup("casual shoes")[0] == ("category", "Casual Shoes")
    assert vocab.lookup("gray") == (("color", "Grey"),)
    assert vocab.lookup("navy") == (("color", "Navy Blue"),)  # alias: no plain navy in this catalog
    assert vocab.lookup("harbour & vale") == (("brand", "Harbour & Vale"),)
    assert vocab.lookup("kids") == (("category", "Boys"),)  # the department this catalog has
    assert vocab.lookup("waterproof") == ()


def test_synonyms_only_produce_values_the_catalog_has() -> None:
    v = Vocabulary.from_products(priceless()[:2])
    assert v.lookup("pants") == () and v.lookup("kids") == () and v.lookup("tees") == ()
    assert not v.has_price and "brand" not in v.values


def test_canonical_and_mentions(vocab: Vocabulary) -> None:
    assert vocab.canonical("color", "navy blue") == "Navy Blue"
    assert vocab.canonical("category", "tshirts") == "T-shirt"
    assert vocab.canonical("color", "purple") is None
    assert vocab.canonical("attr:usage", "sandals") is None  # the right word in the wrong field
    assert vocab.mentions("leather") and vocab.mentions("hooded") and vocab.mentions("Rubber")
    assert not vocab.mentions("waterproof")


def test_json_round_trip_and_atomic_save(vocab: Vocabulary, tmp_path: Path) -> None:
    again = Vocabulary.from_json(json.loads(json.dumps(vocab.to_json())))
    assert again.to_json() == vocab.to_json()
    assert again.lookup("casual shoes") == vocab.lookup("casual shoes") and again.mentions("denim")
    path = tmp_path / "vocab.json"
    vocab.save(path)
    assert Vocabulary.load(path).to_json() == vocab.to_json()
    assert [p.name for p in tmp_path.iterdir()] == ["vocab.json"]  # no temp file left behind


@pytest.mark.parametrize("bad", [None, [], {"version": 99}, {"version": 1, "values": {"nope": ["x"]}},
                                 {"version": 1, "values": {"color": "Red"}},
                                 {"version": 1, "values": {}, "price_range": ["a", 2]}])
def test_from_json_rejects_malformed(bad: object) -> None:
    with pytest.raises(ValueError):
        Vocabulary.from_json(bad)


def test_fixture_catalog_vocabulary() -> None:
    """The repository's own fixtures folder (not the shared datasets)."""
    import csv

    path = Path(__file__).resolve().parents[2] / "fixtures" / "products.csv"
    with path.open(encoding="utf-8", newline="") as fh:
        rows = [product(r["product_id"], r["title"], r["category"], r["color"], float(r["price"]),
                        r["description"], r["brand"], variant_group=r["variant_group"]) for r in csv.DictReader(fh)]
    v = Vocabulary.from_products(rows)
    assert v.lookup("tees")[0] == ("category", "T-shirt") and v.lookup("navy") == (("color", "navy"),)
    assert v.lookup("northwind") == (("brand", "Northwind"),) and v.fields() == ("category", "color", "brand")


def test_write_vocabulary_into_a_fresh_data_dir(tmp_path: Path) -> None:
    from recommender import components
    from recommender.config import Settings

    fixtures = Path(__file__).resolve().parents[2] / "fixtures"
    settings = Settings(data_dir=tmp_path / "data")
    written = components.write_vocabulary(settings, fixtures)
    assert Vocabulary.load(components.vocabulary_path(settings)).to_json() == written.to_json()
