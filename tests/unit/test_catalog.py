"""Catalog validation: good rows load, each bad row is reported (file, line, field) and skipped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recommender.catalog.reader import CatalogReader, RowRejected, count_rows, load_catalog, parse_price
from recommender.errors import CatalogError

HEADER = "product_id,title,description,category,color,brand,price,in_stock,image,pattern\n"


def write_csv(folder: Path, body: bytes, header: str = HEADER) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "products.csv").write_bytes(header.encode() + body)
    return folder


def test_good_rows_load_with_typed_fields(tmp_path: Path) -> None:
    folder = write_csv(tmp_path / "c", (
        b'0042,Red Shirt,"Soft, cotton",Men > Tops > Shirts,Red,Acme,19.90,false,images/a.png,striped\n'
        b"0043,Plain Tee,,,,,,,,\n"
    ))
    load = load_catalog(folder)
    assert load.errors == ()
    first, second = load.products
    assert first.product_id == "0042"  # leading zero kept
    assert first.category == ("Men", "Tops", "Shirts")
    assert first.category_path == "Men > Tops > Shirts"
    assert first.price == pytest.approx(19.90)
    assert first.in_stock is False
    assert first.image == "images/a.png"
    assert dict(first.attributes) == {"pattern": "striped"}  # unknown column kept as attribute
    assert first.line == 2
    assert second.price is None and second.in_stock is True and second.image is None


def test_each_bad_row_is_reported_and_good_rows_survive(tmp_path: Path) -> None:
    body = (
        b"1,Good one,,,,,5,true,,\n"
        b"1,Duplicate id,,,,,5,true,,\n"
        b"2,,,,,,5,true,,\n"
        b"3,Bad price,,,,,abc,true,,\n"
        b"4,Negative,,,,,-1,true,,\n"
        b"5,Bad stock,,,,,1,maybe,,\n"
        b"6,Caf\xe9 latin-1,,,,,1,true,,\n"
        b"7,Too many,,,,,1,true,,,extra\n"
        b",No id,,,,,1,true,,\n"
        b"8,Good two,\"multi\nline\",,,,2.5,TRUE,,\n"
    )
    reader = CatalogReader(write_csv(tmp_path / "c", body))
    products = list(reader)
    assert [p.product_id for p in products] == ["1", "8"]
    assert products[1].description == "multi\nline"
    got = {(e.line, e.field) for e in reader.errors}
    assert got == {(3, "product_id"), (4, "title"), (5, "price"), (6, "price"), (7, "in_stock"),
                   (8, "title"), (9, "(row)"), (10, "product_id")}
    assert all(e.file == "products.csv" for e in reader.errors)
    assert reader.rows_read == 10
    assert "first on line 2" in next(e.reason for e in reader.errors if e.line == 3)
    assert "UTF-8" in next(e.reason for e in reader.errors if e.line == 8)
    # ids of rejected rows still count as "in the catalog", so they are not deleted from the store
    assert {"1", "2", "3", "4", "5", "6", "7", "8"} <= reader.seen_ids


def test_jsonl_catalog(tmp_path: Path) -> None:
    folder = tmp_path / "j"
    folder.mkdir()
    rows = [
        json.dumps({"product_id": "a1", "title": "Bag", "price": 12.5, "in_stock": False, "size": "M"}),
        "{not json",
        json.dumps(["a", "list"]),
        json.dumps({"product_id": "a2", "title": "Hat", "price": "x"}),
        json.dumps({"product_id": "a3", "title": {"nested": 1}}),
    ]
    (folder / "products.jsonl").write_text("\n".join(rows) + "\n")
    load = load_catalog(folder)
    assert [p.product_id for p in load.products] == ["a1"]
    assert load.products[0].price == 12.5 and load.products[0].in_stock is False
    assert dict(load.products[0].attributes) == {"size": "M"}
    assert [(e.line, e.field) for e in load.errors] == [(2, "(row)"), (3, "(row)"), (4, "price"), (5, "title")]


def test_missing_required_column_is_a_catalog_error(tmp_path: Path) -> None:
    folder = write_csv(tmp_path / "c", b"1,x\n", header="product_id,name\n")
    with pytest.raises(CatalogError, match="title"):
        load_catalog(folder)


def test_missing_folder_and_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="not found"):
        load_catalog(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CatalogError, match=r"no products\.csv"):
        load_catalog(tmp_path / "empty")


def test_count_rows_matches_records(tmp_path: Path) -> None:
    folder = write_csv(tmp_path / "c", b'1,a,"two\nlines",,,,,,,\n2,b,,,,,,,,\n\n')
    assert count_rows(folder) == 2
    assert count_rows(write_csv(tmp_path / "e", b"")) == 0


@pytest.mark.parametrize("raw,expected", [("", None), ("0", 0.0), ("19.99", 19.99), (" 7 ", 7.0), (3, 3.0)])
def test_parse_price_accepts(raw: object, expected: float | None) -> None:
    assert parse_price(raw) == expected


@pytest.mark.parametrize("raw", ["abc", "-0.01", "nan", "inf", "1e999", True])
def test_parse_price_rejects(raw: object) -> None:
    with pytest.raises(RowRejected) as info:
        parse_price(raw)
    assert info.value.field == "price"
