"""Frozen dataclasses passed between stages (catalog → encoders → store → …)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

CATEGORY_SEPARATOR = " > "
# The behaviour (ALS item factor) vector and signal as stored and served: the Weaviate named vector, the fusion
# weight and feature keys, the API's source name. A data contract, so spelled as stored ("behaviour" elsewhere).
BEHAVIOUR_VECTOR = "behavior"


@dataclass(frozen=True)
class Product:
    """One valid catalog row. Ids are strings end to end (leading zeros kept)."""

    product_id: str
    title: str
    description: str = ""
    category: tuple[str, ...] = ()
    color: str = ""
    brand: str = ""
    price: float | None = None
    in_stock: bool = True
    image: str | None = None
    attributes: tuple[tuple[str, str], ...] = ()
    line: int = 0

    @property
    def category_path(self) -> str:
        """The category levels joined back into DATA.md's ``A > B > C`` form."""
        return CATEGORY_SEPARATOR.join(self.category)

    @property
    def variant_group(self) -> str:
        """The product's variant group, or its own id when it has none."""
        return dict(self.attributes).get("variant_group") or self.product_id

    def text_for_embedding(self) -> str:
        """The words the text encoder sees: title, category, colour, brand, description, attributes."""
        parts = [self.title, self.category_path, self.color, self.brand, self.description]
        parts += [f"{k.replace('_', ' ')}: {v}" for k, v in self.attributes if k != "variant_group" and v]
        return ". ".join(p.strip() for p in parts if p and p.strip())


@dataclass(frozen=True)
class RowError:
    """A rejected input row: where it was and why."""

    file: str
    line: int
    field: str
    reason: str
    product_id: str | None = None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.reason}"


@dataclass(frozen=True)
class CatalogLoad:
    """The result of reading a catalog: the good rows, the bad ones, and every id seen."""

    products: tuple[Product, ...]
    errors: tuple[RowError, ...] = ()
    rows_read: int = 0
    # Ids of rejected rows too: a product whose row is broken today is not "removed from the catalog".
    seen_ids: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class ProductFilter:
    """Store-level filter pushed down into a query; every set field must hold (AND).

    ``category`` is a path prefix on whole levels: ``("Women", "Bottoms")`` matches ``Women > Bottoms > Jeans``
    but not ``Women > Bottomwear``; levels compare exactly (case-sensitive). ``in_stock=True`` keeps only
    in-stock products; ``None`` anywhere means "no condition". Price bounds are inclusive; a product without
    a price fails any price bound.
    """

    category: tuple[str, ...] = ()
    price_min: float | None = None
    price_max: float | None = None
    in_stock: bool | None = None

    @property
    def is_empty(self) -> bool:
        """True when the filter keeps everything."""
        return not self.category and self.price_min is None and self.price_max is None and self.in_stock is None


@dataclass(frozen=True)
class RankQuery:
    """One recommendation request: an anchor product page and/or a known shopper with recent history."""

    anchor_id: str | None
    user_id: str | None = None
    history: tuple[str, ...] = ()  # the shopper's products, most recent first
    purchased: frozenset[str] = frozenset()  # excluded by the "already bought" rule
    k: int = 10
    exclude: frozenset[str] = frozenset()
    filters: ProductFilter | None = None  # pushed down into every vector-store query


@dataclass(frozen=True)
class Candidate:
    """A product proposed by one named candidate source, with that source's own score and rank."""

    product_id: str
    source: str
    score: float
    rank: int


@dataclass(frozen=True)
class ItemView:
    """What ranking needs to know of a product: its vectors and the properties rules and features use."""

    product_id: str
    vectors: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    category: tuple[str, ...] = ()
    price: float | None = None
    variant_group: str = ""
    in_stock: bool = True
    title: str = ""
    color: str = ""
    image: str = ""
    attributes: tuple[tuple[str, str], ...] = ()  # the catalog's extra columns (pattern, department, …)


@dataclass(frozen=True)
class RankedItem:
    """A recommendation with its fused score and the per-signal breakdown that produced it."""

    product_id: str
    score: float
    signals: dict[str, float] = field(default_factory=dict, hash=False, compare=False)
    sources: tuple[str, ...] = ()
