"""ProductFilter → Weaviate filter: the store half of the one filter definition (``domain.ProductFilter``).

Attribute conditions compare case-folded keys written beside the display values (``f_color``, ``f_brand``,
``f_category`` = every category level, ``f_attrs`` = ``column=value`` pairs), so the store decides exactly what
``FieldCondition.matches`` decides in Python. ``text`` conditions use the word-tokenised title/description: a
one-word value is an exact token test; a phrase is pushed down as "has all its words" and callers re-check the
phrase with ``ProductFilter.keeps`` (a negated phrase is not pushed down at all, for the same reason).
"""

from __future__ import annotations

from typing import Any

from weaviate.classes.query import Filter

from recommender.domain import ATTR_PREFIX, CATEGORY_SEPARATOR, FieldCondition, Product, ProductFilter

KEY_FIELDS = {"color": "f_color", "brand": "f_brand", "category": "f_category"}
TEXT_FIELDS = ("title", "description")


def key(value: str) -> str:
    """The case-folded comparison key of a catalog value."""
    return " ".join(value.split()).casefold()


def attribute_key(column: str, value: str) -> str:
    """The ``f_attrs`` entry of one catalog column's value."""
    return f"{key(column)}={key(value)}"


def filter_keys(product: Product) -> dict[str, Any]:
    """The filter-key properties of a product (written with its object)."""
    return {
        "f_color": key(product.color), "f_brand": key(product.brand),
        "f_category": [key(level) for level in product.category if level.strip()],
        "f_attrs": [attribute_key(k, v) for k, v in product.attributes if v.strip()],
    }


def _condition(c: FieldCondition) -> Any:
    if c.field == "text":
        return _text_condition(c)
    if c.field.startswith(ATTR_PREFIX):
        prop, values = "f_attrs", [attribute_key(c.field.removeprefix(ATTR_PREFIX), v) for v in c.values]
    else:
        prop, values = KEY_FIELDS[c.field], [key(v) for v in c.values]
    by = Filter.by_property(prop)
    return by.contains_none(values) if c.negate else by.contains_any(values)


def _text_condition(c: FieldCondition) -> Any:
    words = [v.split() for v in (key(v) for v in c.values)]
    if c.negate:
        singles = [w[0] for w in words if len(w) == 1]
        if not singles:
            return None
        return Filter.all_of([Filter.by_property(f).contains_none(singles) for f in TEXT_FIELDS])
    parts = [Filter.by_property(f).contains_all(w) for w in words for f in TEXT_FIELDS]
    return parts[0] if len(parts) == 1 else Filter.any_of(parts)


def _category(levels: tuple[str, ...]) -> list[Any]:
    if 0 < len(levels) <= 3:
        return [Filter.by_property(f"category_l{i + 1}").equal(level) for i, level in enumerate(levels)]
    # deeper than the stored level columns: the whole path, or the path plus more levels
    path = CATEGORY_SEPARATOR.join(levels)
    return [Filter.any_of([Filter.by_property("category").equal(path),
                           Filter.by_property("category").like(f"{path}{CATEGORY_SEPARATOR}*")])]


def weaviate_filter(f: ProductFilter | None) -> Any:
    """The ``weaviate.classes.query.Filter`` of a ProductFilter, or None when it keeps everything."""
    if f is None or f.is_empty:
        return None
    parts: list[Any] = _category(f.category) if f.category else []
    if f.price_min is not None:
        parts.append(Filter.by_property("price").greater_or_equal(float(f.price_min)))
    if f.price_max is not None:
        parts.append(Filter.by_property("price").less_or_equal(float(f.price_max)))
    if f.in_stock is not None:
        parts.append(Filter.by_property("in_stock").equal(f.in_stock))
    parts += [p for p in (_condition(c) for c in f.conditions) if p is not None]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else Filter.all_of(parts)
