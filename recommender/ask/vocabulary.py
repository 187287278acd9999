"""The catalog's own words: every category level, colour, brand and small attribute column, whether prices
exist, and a bounded set of the words product texts use. The planner maps question phrases onto these, so a
constraint only ever names a value the catalog really has, spelled as the catalog spells it."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from recommender.ask.model import ATTR_PREFIX
from recommender.ask.text import EXPANSIONS, STOPWORDS, key, norm, words
from recommender.domain import Product

MAX_ATTR_VALUES = 64  # an attribute column with more distinct values is free text or an id, not a facet
MAX_ATTR_COLUMNS = 32
MAX_FIELD_VALUES = 5000  # per core field (category levels, colours, brands)
MAX_VALUE_CHARS = 80
MAX_WORDS = 200_000
MAX_JSON_BYTES = 16 * 1024 * 1024
MAX_PHRASE_WORDS = 6
SKIP_COLUMNS = frozenset({"variant_group", "id", "sku", "ean", "gtin", "upc", "url", "link", "image", "images"})
# Which field wins when one phrase is several fields' value (Myntra "Sandals" is a category level and an
# article_type): the category, since it is the store's own filter and the broader statement.
FIELD_PRIORITY = ("category", "color", "brand")
VERSION = 1


def field_rank(field: str) -> int:
    """Sort key: category first, then colour, brand, then attribute columns."""
    return FIELD_PRIORITY.index(field) if field in FIELD_PRIORITY else len(FIELD_PRIORITY)


def _skip_column(name: str) -> bool:
    low = name.casefold()
    return low in SKIP_COLUMNS or low.endswith(("_id", "_url", "_sku")) or low.startswith("image")


class _Builder:
    """Streaming accumulator: memory grows with distinct values, never with the number of products."""

    def __init__(self) -> None:
        self.values: dict[str, set[str]] = {"category": set(), "color": set(), "brand": set()}
        self.roots: set[str] = set()
        self.dropped: set[str] = set()
        self.words: set[str] = set()
        self.words_truncated = False
        self.price_min = math.inf
        self.price_max = -math.inf

    def add(self, p: Product) -> None:
        for depth, level in enumerate(p.category):
            self._add_value("category", level)
            if depth == 0 and len(self.roots) < MAX_FIELD_VALUES:
                self.roots.add(level)
        self._add_value("color", p.color)
        self._add_value("brand", p.brand)
        for name, value in p.attributes:
            self._add_attr(name, value)
        if p.price is not None and math.isfinite(p.price):
            self.price_min = min(self.price_min, p.price)
            self.price_max = max(self.price_max, p.price)
        self._add_words(p.title)
        self._add_words(p.description)

    def _add_value(self, field: str, value: str) -> None:
        value = " ".join(value.split())
        bucket = self.values[field]
        if value and len(value) <= MAX_VALUE_CHARS and len(bucket) < MAX_FIELD_VALUES:
            bucket.add(value)

    def _add_attr(self, name: str, value: str) -> None:
        field = ATTR_PREFIX + name
        if field in self.dropped or _skip_column(name):
            return
        value = " ".join(value.split())
        if len(value) > MAX_VALUE_CHARS:
            self._drop(field)
            return
        if field not in self.values:
            if len(self.values) - 3 >= MAX_ATTR_COLUMNS:
                return
            self.values[field] = set()
        if value:
            self.values[field].add(value)
            if len(self.values[field]) > MAX_ATTR_VALUES:
                self._drop(field)

    def _drop(self, field: str) -> None:
        self.values.pop(field, None)
        self.dropped.add(field)

    def _add_words(self, text: str) -> None:
        if self.words_truncated or not text:
            return
        for w in words(text):
            self.words.add(norm(w))
            if len(self.words) >= MAX_WORDS:
                self.words_truncated = True
                return


class Vocabulary:
    """What the catalog can be asked about, and the phrase → (field, canonical value) index over it."""

    def __init__(
        self,
        values: Mapping[str, Iterable[str]],
        *,
        roots: Iterable[str] = (),
        price_range: tuple[float, float] | None = None,
        text_words: Iterable[str] = (),
        words_truncated: bool = False,
    ) -> None:
        self.values: dict[str, tuple[str, ...]] = {f: tuple(sorted(set(v))) for f, v in values.items() if v}
        self.roots = frozenset(roots)
        self.price_range = price_range
        self.words_truncated = words_truncated
        self._index: dict[str, list[tuple[str, str]]] = {}
        self._aliases: dict[str, list[tuple[str, str]]] = {}
        self.max_phrase_words = 1
        for field in sorted(self.values, key=lambda f: (field_rank(f), f)):
            for value in self.values[field]:
                self._index_value(field, value)
        self._add_colour_aliases()
        self._text_only = frozenset(text_words)
        value_words = {norm(w) for vals in self.values.values() for v in vals for w in words(v)}
        self.text_words = self._text_only | value_words | frozenset(self._index)

    @classmethod
    def from_products(cls, products: Iterable[Product]) -> Vocabulary:
        """Build from a stream of products in one pass (memory: distinct values and words, capped)."""
        b = _Builder()
        for p in products:
            b.add(p)
        price = (b.price_min, b.price_max) if b.price_min <= b.price_max else None
        return cls(b.values, roots=b.roots, price_range=price, text_words=b.words,
                   words_truncated=b.words_truncated)

    def _index_value(self, field: str, value: str) -> None:
        k = key(value)
        n = len(words(value))
        if not k or n > MAX_PHRASE_WORDS:
            return
        self._index.setdefault(k, []).append((field, value))
        self.max_phrase_words = max(self.max_phrase_words, n)

    def _add_colour_aliases(self) -> None:
        # "navy" finds "Navy Blue" when the catalog has no plain navy; only distinctive words (not "off").
        for value in self.values.get("color", ()):
            parts = words(value)
            if len(parts) < 2:
                continue
            for part in parts:
                k = norm(part)
                if len(k) >= 4 and k not in STOPWORDS and k not in self._index:
                    self._aliases.setdefault(k, []).append(("color", value))

    @property
    def has_price(self) -> bool:
        """True when at least one product has a price (otherwise price questions cannot be answered)."""
        return self.price_range is not None

    def fields(self) -> tuple[str, ...]:
        """The constraint fields this catalog has values for (``category``, ``color``, ``attr:usage``, …)."""
        return tuple(sorted(self.values, key=lambda f: (field_rank(f), f)))

    def lookup(self, phrase: str) -> tuple[tuple[str, str], ...]:
        """Every (field, canonical value) a phrase names, best field first; empty when it names none."""
        k = key(phrase)
        return self.lookup_key(k)

    def lookup_key(self, k: str) -> tuple[tuple[str, str], ...]:
        """``lookup`` for an already-normalised key (see ``text.key``)."""
        if k in self._index:
            return tuple(self._index[k])
        if k in self._aliases:
            return tuple(self._aliases[k])
        found = [hit for alt in EXPANSIONS.get(k, ()) for hit in self._index.get(alt, ())]
        return tuple(sorted(found, key=lambda h: field_rank(h[0])))

    def canonical(self, field: str, value: str) -> str | None:
        """The catalog's spelling of ``value`` in ``field`` (case, plural and synonym insensitive), or None."""
        exact = {v.casefold(): v for v in self.values.get(field, ())}
        if value.strip().casefold() in exact:
            return exact[value.strip().casefold()]
        hits = [v for f, v in self.lookup(value) if f == field]
        return hits[0] if hits else None

    def is_root(self, value: str) -> bool:
        """True for a top category level (a department such as Men or Women)."""
        return value in self.roots

    def mentions(self, word: str) -> bool:
        """True when some product's text or value uses this word; unknowable words count as mentioned when
        the word set was capped (so a capped vocabulary never claims "no product mentions X" wrongly)."""
        return key(word) in self.text_words or self.words_truncated

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (sorted, so equal vocabularies serialise identically)."""
        return {
            "version": VERSION,
            "values": {f: list(v) for f, v in sorted(self.values.items())},
            "roots": sorted(self.roots),
            "price_range": list(self.price_range) if self.price_range else None,
            "words": sorted(self._text_only),
            "words_truncated": self.words_truncated,
        }

    @classmethod
    def from_json(cls, data: Any) -> Vocabulary:
        """Rebuild from ``to_json`` output, checking shape and bounds (raises ValueError when malformed)."""
        if not isinstance(data, dict) or data.get("version") != VERSION:
            raise ValueError("not a vocabulary (missing or unknown version)")
        values = data.get("values")
        if not isinstance(values, dict) or len(values) > MAX_ATTR_COLUMNS + 3:
            raise ValueError("vocabulary values must be a bounded object")
        checked: dict[str, list[str]] = {}
        for field, vals in values.items():
            ok_field = field in FIELD_PRIORITY or (isinstance(field, str) and field.startswith(ATTR_PREFIX))
            if not ok_field or not _str_list(vals, MAX_FIELD_VALUES):
                raise ValueError(f"bad vocabulary field {field!r}")
            checked[field] = vals
        roots, text_words = data.get("roots", []), data.get("words", [])
        if not _str_list(roots, MAX_FIELD_VALUES) or not _str_list(text_words, MAX_WORDS):
            raise ValueError("vocabulary roots/words must be bounded lists of strings")
        return cls(checked, roots=roots, price_range=_price_range(data.get("price_range")),
                   text_words=text_words, words_truncated=bool(data.get("words_truncated")))

    def save(self, path: Path | str) -> None:
        """Write as JSON atomically (temp file in the same folder, then rename)."""
        path = Path(path)
        text = json.dumps(self.to_json(), ensure_ascii=False, separators=(",", ":"))
        if len(text.encode()) > MAX_JSON_BYTES:
            raise ValueError("vocabulary too large to save")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: Path | str) -> Vocabulary:
        """Read a saved vocabulary, refusing files over the size bound."""
        path = Path(path)
        if path.stat().st_size > MAX_JSON_BYTES:
            raise ValueError(f"{path} is larger than {MAX_JSON_BYTES} bytes")
        return cls.from_json(json.loads(path.read_text(encoding="utf-8")))


def _str_list(value: Any, limit: int) -> bool:
    return isinstance(value, list) and len(value) <= limit and all(isinstance(v, str) for v in value)


def _price_range(value: Any) -> tuple[float, float] | None:
    if value is None:
        return None
    if (not isinstance(value, list) or len(value) != 2
            or not all(isinstance(v, int | float) and math.isfinite(v) for v in value)):
        raise ValueError("price_range must be [min, max] or null")
    return float(value[0]), float(value[1])


def vocabulary_path(data_dir: Path, collection: str) -> Path:
    """Where the vocabulary of one store collection is kept (written by vectorize and the refresh)."""
    return data_dir / "ask" / f"vocabulary-{collection}.json"


def write_vocabulary(products: Iterable[Product], path: Path) -> Vocabulary:
    """Gather the catalog's words (one streaming pass) and save them where the ask service reads them."""
    vocabulary = Vocabulary.from_products(products)
    vocabulary.save(path)
    return vocabulary
