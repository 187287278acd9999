"""One pass over a catalog that counts what the question generator needs: in-stock products per attribute
value and per combination, sold-out colour×type pairs, prices per type, which "odd" words the catalog uses,
and small seeded reservoirs of products (for photo and title questions).

Counts are keyed by every distinct category level of a product, so a gold ``category in (v,)`` constraint
(which ``satisfies`` matches at any level) is counted exactly. Memory grows with the number of distinct
values and combinations, not with the number of products, so 100k products stream through.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from recommender.domain import Product

GENDERS = ("men", "women", "boys", "girls")
UNISEX = "unisex"
MAX_SMALL_VALUES = 12  # a column with more distinct values than this is not a shopper's filter word
SKIP_COLUMNS = frozenset({"variant_group", "article_type"})  # ids, and a copy of the category leaf
# Product types and materials a fashion catalog is unlikely to mention; each is used only if no product does.
ODD_NOUNS = (
    "snorkels", "kayaks", "saxophones", "lawnmowers", "microwaves", "surfboards", "telescopes", "chainsaws",
    "harpoons", "anvils", "trombones", "aquariums", "tractors", "accordions", "wheelbarrows", "parachutes",
    "toasters", "drones", "canoes", "harmonicas",
)
ODD_ADJECTIVES = ("waterproof", "titanium", "kevlar", "bulletproof", "fireproof", "inflatable", "graphene",
                  "heated", "magnetic", "solar")
_WORD = re.compile(r"[^\W_]+")
_MASS_ENDINGS = ("wear", "apparel", "clothing", "jewellery", "jewelry", "makeup", "luggage", "denim")


def words_of(text: str) -> list[str]:
    """Lower-case alphanumeric tokens (the word split ``satisfies`` uses for the text field, as a regex for
    speed: this runs over every product's text)."""
    return _WORD.findall(text.casefold())


def singular(word: str) -> str:
    """A rough singular, only to check both forms of an odd word against the catalog."""
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "sses", "xes")):
        return word[:-2]
    return word[:-1] if word.endswith("s") and not word.endswith("ss") else word


def plural(name: str) -> str:
    """How a shopper names many of a category level: ``T-shirt`` → ``t-shirts``, ``Dress`` → ``dresses``."""
    text = name.strip().lower()
    if not text or text.endswith(_MASS_ENDINGS) or (text.endswith("s") and not text.endswith("ss")):
        return text
    if text.endswith(("ss", "sh", "ch", "x")):
        return text + "es"
    if text.endswith("y") and len(text) > 1 and text[-2] not in "aeiou":
        return text[:-1] + "ies"
    return text + "s"


def _odd_forms() -> set[str]:
    return {form for w in (*ODD_NOUNS, *ODD_ADJECTIVES) for form in (w, singular(w), w + "s")}


@dataclass
class CatalogIndex:
    """Counts over a catalog's products, keyed by casefolded values (``spell`` maps back to the catalog's
    spelling). ``count`` holds in-stock products, ``sold_out`` the rest; see ``add`` for the keys."""

    seed: int = 0
    reservoir_size: int = 200
    spell: dict[tuple[str, str], str] = field(default_factory=dict)
    count: Counter[tuple[str, ...]] = field(default_factory=Counter)
    sold_out: Counter[tuple[str, ...]] = field(default_factory=Counter)
    leaves: set[str] = field(default_factory=set)
    column_values: dict[str, set[str]] = field(default_factory=dict)
    prices: dict[str, list[float]] = field(default_factory=dict)
    odd_words_seen: set[str] = field(default_factory=set)
    titles: Counter[str] = field(default_factory=Counter)
    with_image: list[Product] = field(default_factory=list)
    in_stock_sample: list[Product] = field(default_factory=list)
    products: int = 0
    has_brand: bool = False
    _images_seen: int = 0
    _stock_seen: int = 0
    _odd: set[str] = field(default_factory=_odd_forms)
    _rng: random.Random = field(default_factory=random.Random)

    @classmethod
    def build(cls, products: Iterable[Product], *, seed: int = 0, reservoir_size: int = 200) -> CatalogIndex:
        """Index an iterable of products in one pass."""
        index = cls(seed=seed, reservoir_size=reservoir_size, _rng=random.Random(seed))
        for product in products:
            index.add(product)
        return index

    def name(self, kind: str, value: str) -> str:
        """The catalog's own spelling of a casefolded value (first seen)."""
        return self.spell.get((kind, value), value)

    def small_columns(self) -> list[str]:
        """Extra columns with few enough values to be filter words (usage, season, …)."""
        return sorted(c for c, vs in self.column_values.items() if 2 <= len(vs) <= MAX_SMALL_VALUES)

    def add(self, p: Product) -> None:
        """Count one product under every key the generator asks about."""
        self.products += 1
        levels = self._levels(p)
        colour = self._key("color", p.color)
        brand = self._key("brand", p.brand)
        gender = levels[0] if levels and levels[0] in (*GENDERS, UNISEX) else ""
        attrs = self._attrs(p)
        types = sorted(set(levels[1:] if gender else levels))
        keys: list[tuple[str, ...]] = [("cat", v) for v in set(levels)]
        keys += [("color", colour)] if colour else []
        keys += [("brand", brand)] if brand else []
        keys += [("attr", c, v) for c, v in attrs]
        for t in types:
            keys += [("cat+color", t, colour)] if colour else []
            keys += [("cat+gender", t, gender)] if gender else []
            keys += [("cat+color+gender", t, colour, gender)] if colour and gender else []
            keys += [("cat+brand", t, brand)] if brand else []
            keys += [("cat+attr", t, c, v) for c, v in attrs]
            keys += [("cat+color+attr", t, colour, c, v) for c, v in attrs] if colour else []
        (self.count if p.in_stock else self.sold_out).update(keys)
        if levels:
            self.leaves.add(levels[-1])
        if p.in_stock and p.price is not None:
            for t in types:
                self.prices.setdefault(t, []).append(p.price)
        self.has_brand = self.has_brand or bool(brand)
        self.odd_words_seen.update(self._odd.intersection(words_of(self._all_text(p))))
        self.titles[p.title.casefold()] += 1
        self._sample(p)

    def _key(self, kind: str, value: str) -> str:
        key = value.strip().casefold()
        if key:
            self.spell.setdefault((kind, key), value.strip())
        return key

    def _levels(self, p: Product) -> list[str]:
        return [k for k in (self._key("cat", lv) for lv in p.category) if k]

    def _attrs(self, p: Product) -> list[tuple[str, str]]:
        out = []
        for column, value in p.attributes:
            key = self._key(f"attr:{column}", value)
            if column in SKIP_COLUMNS or not key:
                continue
            values = self.column_values.setdefault(column, set())
            if len(values) <= MAX_SMALL_VALUES:  # stop tracking a column once it is clearly not small
                values.add(key)
                out.append((column, key))
        return out

    @staticmethod
    def _all_text(p: Product) -> str:
        return " ".join([p.title, p.description, *p.category, p.color, p.brand, *(v for _, v in p.attributes)])

    def _sample(self, p: Product) -> None:
        # Reservoir sampling (seeded), so the samples are uniform however long the stream is.
        if p.image and not p.image.lower().startswith(("http://", "https://")) and p.category:
            self._images_seen += 1
            self._reservoir(self.with_image, p, self._images_seen)
        if p.in_stock:
            self._stock_seen += 1
            self._reservoir(self.in_stock_sample, p, self._stock_seen)

    def _reservoir(self, sample: list[Product], p: Product, seen: int) -> None:
        if len(sample) < self.reservoir_size:
            sample.append(p)
            return
        slot = self._rng.randrange(seen)
        if slot < self.reservoir_size:
            sample[slot] = p
