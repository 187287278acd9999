"""Read and validate a catalog folder (DATA.md): good rows become Products, bad rows become RowErrors.

Rows are streamed, so a 100,000-product catalog never sits in memory as text. A bad row is reported
(file, line, field, reason) and skipped; it never stops the load and never hides the rows around it.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from recommender.catalog.rows import RowRejected, has_bad_bytes, read_rows
from recommender.domain import CATEGORY_SEPARATOR, CatalogLoad, Product, RowError
from recommender.errors import CatalogError

REQUIRED_COLUMNS = ("product_id", "title")
KNOWN_COLUMNS = (
    "product_id", "title", "description", "category", "color", "brand", "price", "in_stock", "image",
)
MAX_FIELD_CHARS = 20_000


def find_products_file(folder: Path) -> Path:
    """The catalog's products file: products.csv, else products.jsonl."""
    if not folder.is_dir():
        raise CatalogError(f"catalog folder not found: {folder}")
    for name in ("products.csv", "products.jsonl"):
        if (folder / name).is_file():
            return folder / name
    raise CatalogError(f"{folder}: no products.csv or products.jsonl")


@dataclass
class CatalogReader:
    """Streams the products of a catalog folder; errors, row counts and every id seen accumulate."""

    folder: Path
    errors: list[RowError] = field(default_factory=list)
    rows_read: int = 0
    seen_ids: set[str] = field(default_factory=set)
    _first_line: dict[str, int] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        """The products file being read."""
        return find_products_file(self.folder)

    def __iter__(self) -> Iterator[Product]:
        path = self.path
        for line, raw in read_rows(path, REQUIRED_COLUMNS, CatalogError):
            self.rows_read += 1
            product = self._accept(path.name, line, raw)
            if product is not None:
                yield product

    def _accept(self, file: str, line: int, raw: Mapping[str, Any] | RowRejected) -> Product | None:
        pid = raw.get("product_id") if isinstance(raw, Mapping) else raw.product_id
        pid = pid.strip() if isinstance(pid, str) and pid.strip() and not has_bad_bytes(pid) else None
        try:
            if isinstance(raw, RowRejected):
                raise raw
            product = parse_product(raw, line)
            if product.product_id in self._first_line:
                first = self._first_line[product.product_id]
                raise RowRejected("product_id", f"duplicate id {product.product_id!r} (first on line {first})")
        except RowRejected as exc:
            self.errors.append(RowError(file, line, exc.field, exc.reason, pid))
            if pid is not None:
                self.seen_ids.add(pid)
            return None
        self._first_line[product.product_id] = line
        self.seen_ids.add(product.product_id)
        return product


def count_rows(folder: Path) -> int:
    """Number of non-empty records in a catalog's products file (for progress bars; cheap, no parsing)."""
    path = find_products_file(folder)
    with path.open(encoding="utf-8", errors="replace", newline="") as fh:
        if path.suffix == ".csv":
            return max(0, sum(1 for cells in csv.reader(fh) if any(c.strip() for c in cells)) - 1)
        return sum(1 for text in fh if text.strip())


def load_catalog(folder: Path) -> CatalogLoad:
    """Read a whole (small) catalog into memory: for tests, evaluation and tools, not for big jobs."""
    reader = CatalogReader(folder)
    products = tuple(reader)
    return CatalogLoad(products, tuple(reader.errors), reader.rows_read, frozenset(reader.seen_ids))


def parse_product(row: Mapping[str, Any], line: int = 0) -> Product:
    """Validate one row (CSV strings or JSON values) into a Product, or raise RowRejected naming the field."""
    pid = _text(row, "product_id")
    if not pid:
        raise RowRejected("product_id", "empty product_id")
    title = _text(row, "title")
    if not title:
        raise RowRejected("title", "empty title")
    category = tuple(lv.strip() for lv in _text(row, "category").split(CATEGORY_SEPARATOR.strip()) if lv.strip())
    attributes = tuple(
        sorted((str(k).strip(), _text(row, k)) for k in row if k is not None and k not in KNOWN_COLUMNS)
    )
    return Product(
        product_id=pid,
        title=title,
        description=_text(row, "description"),
        category=category,
        color=_text(row, "color"),
        brand=_text(row, "brand"),
        price=parse_price(row.get("price")),
        in_stock=parse_in_stock(row.get("in_stock")),
        image=_text(row, "image") or None,
        attributes=tuple((k, v) for k, v in attributes if k),
        line=line,
    )


def _text(row: Mapping[str, Any], name: str) -> str:
    value = row.get(name)
    if value is None:
        return ""
    if isinstance(value, dict | list):
        raise RowRejected(name, "must be a string, not a nested object")
    text = str(value).strip()
    if len(text) > MAX_FIELD_CHARS:
        raise RowRejected(name, f"longer than {MAX_FIELD_CHARS} characters")
    return text


def parse_price(value: Any) -> float | None:
    """DATA.md price: a decimal number ≥ 0; empty means unknown."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise RowRejected("price", "not a number")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise RowRejected("price", f"not a number: {str(value)[:40]!r}") from exc
    if not number.is_finite() or not math.isfinite(float(number)):
        raise RowRejected("price", "not a finite number")
    if number < 0:
        raise RowRejected("price", f"negative price {number}")
    return float(number)


def parse_in_stock(value: Any) -> bool:
    """DATA.md in_stock: true/false (any case); empty means true."""
    if value is None or value == "":
        return True
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"true", "false"}:
        return text == "true"
    raise RowRejected("in_stock", f"expected true or false, got {str(value)[:20]!r}")
