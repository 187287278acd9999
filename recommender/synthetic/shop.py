"""A deterministic synthetic shop: catalog, product pictures and shopper events with known structure.

``generate_catalog`` writes a DATA.md catalog folder (``products.csv``, ``images/``, ``events.csv``) plus
``truth.csv``, the hidden facts each product was made from (type, colour, pattern, style cluster), so
tests and evaluations can check answers that are known by construction:

- looks: every picture is drawn from the product's true type, colour and pattern; the words name the
  colour only sometimes and the pattern never appears in a column (only, sometimes, in the description);
- behaviour: shoppers have a style (colours, patterns), category affinities and follow complements
  (jeans → sneakers, dress → bag, …), so co-occurrence carries signal beyond popularity.

Same seed → byte-identical files. Rows and pictures are streamed to disk, so big catalogs use flat memory.
"""

from __future__ import annotations

import bisect
import csv
import multiprocessing
import os
import re
import time
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import numpy as np
from tqdm import tqdm

from recommender.synthetic.images import COLOR_NAMES, LIGHT_COLORS, PATTERNS, Look, render_look, save_png

START = datetime(2024, 1, 1, tzinfo=UTC)
SPAN_DAYS = 90
EVENT_TYPES: tuple[str, ...] = ("view", "cart", "purchase")
PRODUCT_COLUMNS: tuple[str, ...] = (
    "product_id", "title", "description", "category", "color", "brand", "price", "in_stock", "image",
    "variant_group",
)
EVENT_COLUMNS: tuple[str, ...] = ("user_id", "product_id", "event", "timestamp", "session_id")
TRUTH_COLUMNS: tuple[str, ...] = ("product_id", "product_type", "color", "pattern", "style_cluster")
GENDERS: tuple[str, ...] = ("men", "women")
T = TypeVar("T")


@dataclass(frozen=True)
class Category:
    """A shop category: its DATA.md path, the product type (silhouette) and who it is for."""

    path: str
    product_type: str
    gender: str  # "men", "women" or "unisex"
    weight: float  # share of the catalog


CATEGORIES: tuple[Category, ...] = (
    Category("Men > Tops > T-shirt", "t-shirt", "men", 1.2),
    Category("Women > Tops > T-shirt", "t-shirt", "women", 1.2),
    Category("Men > Tops > Shirt", "shirt", "men", 1.0),
    Category("Women > Tops > Shirt", "shirt", "women", 0.8),
    Category("Men > Bottoms > Jeans", "jeans", "men", 1.0),
    Category("Women > Bottoms > Jeans", "jeans", "women", 1.0),
    Category("Men > Bottoms > Trousers", "trousers", "men", 0.9),
    Category("Women > Bottoms > Trousers", "trousers", "women", 0.7),
    Category("Women > Bottoms > Skirt", "skirt", "women", 0.8),
    Category("Women > Dresses > Dress", "dress", "women", 1.2),
    Category("Men > Outerwear > Jacket", "jacket", "men", 0.8),
    Category("Women > Outerwear > Jacket", "jacket", "women", 0.8),
    Category("Unisex > Shoes > Sneakers", "sneakers", "unisex", 1.2),
    Category("Women > Accessories > Bags", "bag", "women", 0.9),
    Category("Unisex > Accessories > Hats", "hat", "unisex", 0.8),
    Category("Unisex > Accessories > Socks", "socks", "unisex", 0.7),
)

# What shoppers tend to look at next, by product type ("complete the look").
COMPLEMENTS: dict[str, str] = {
    "t-shirt": "jeans",
    "shirt": "trousers",
    "trousers": "shirt",
    "jeans": "sneakers",
    "sneakers": "socks",
    "socks": "sneakers",
    "skirt": "t-shirt",
    "dress": "bag",
    "bag": "dress",
    "jacket": "hat",
    "hat": "jacket",
}


@dataclass(frozen=True)
class Style:
    """A style cluster: the colours, patterns, words and brands that go together."""

    colors: tuple[str, ...]
    patterns: tuple[str, ...]
    adjectives: tuple[str, ...]
    brands: tuple[str, ...]


STYLES: tuple[Style, ...] = (
    Style(("navy", "white", "beige", "grey"), ("solid", "striped"),
          ("classic", "timeless", "smart", "clean-cut"), ("Harbour & Vale", "Northwind")),
    Style(("black", "white", "red", "blue"), ("solid", "striped"),
          ("sporty", "athletic", "active", "performance"), ("Bolt Athletic", "Kestrel")),
    Style(("pink", "white", "red", "beige"), ("floral", "dotted"),
          ("romantic", "delicate", "feminine", "soft"), ("Mira Lane", "Petalworks")),
    Style(("yellow", "red", "green", "blue"), ("checked", "dotted", "striped"),
          ("bold", "playful", "statement", "vibrant"), ("Loud Club", "Mira Lane")),
    Style(("black", "grey", "white", "beige"), ("solid",),
          ("minimal", "essential", "understated", "sleek"), ("Loom Theory", "Northwind")),
    Style(("green", "beige", "navy", "grey"), ("checked", "solid"),
          ("rugged", "outdoor", "utility", "hard-wearing"), ("Fjellgear", "Saltmarsh")),
)
BRAND_PRICE_FACTOR: dict[str, float] = {
    "Harbour & Vale": 1.25, "Northwind": 1.0, "Bolt Athletic": 1.1, "Kestrel": 0.85, "Mira Lane": 1.0,
    "Petalworks": 1.15, "Loud Club": 0.9, "Loom Theory": 1.35, "Fjellgear": 1.2, "Saltmarsh": 0.8,
}


@dataclass(frozen=True)
class TypeWords:
    """The vocabulary and price range of one product type."""

    nouns: tuple[str, ...]
    materials: tuple[str, ...]
    fits: tuple[str, ...]  # empty: the type has no fit (bags, hats)
    uses: tuple[str, ...]
    price: tuple[float, float]


WORDS: dict[str, TypeWords] = {
    "t-shirt": TypeWords(("T-shirt", "tee", "crew-neck tee", "everyday tee", "short-sleeve top"),
                         ("cotton", "organic cotton", "cotton jersey", "linen blend", "bamboo jersey"),
                         ("slim", "regular", "relaxed", "oversized", "boxy"),
                         ("everyday wear", "layering", "the gym", "warm days", "lounging at home"), (9, 35)),
    "shirt": TypeWords(("shirt", "button-up shirt", "Oxford shirt", "poplin shirt", "overshirt"),
                       ("cotton poplin", "linen", "Oxford cotton", "flannel", "chambray"),
                       ("slim", "regular", "relaxed", "tailored"),
                       ("the office", "dinners out", "weekends", "smart-casual days", "travel"), (25, 80)),
    "jacket": TypeWords(("jacket", "bomber jacket", "rain jacket", "field jacket", "zip-up jacket"),
                        ("nylon", "waxed cotton", "recycled polyester", "wool blend", "softshell"),
                        ("regular", "relaxed", "cropped", "longline"),
                        ("commuting", "cool evenings", "travel", "rainy days", "hiking"), (60, 250)),
    "jeans": TypeWords(("jeans", "straight-leg jeans", "skinny jeans", "denim jeans", "five-pocket jeans"),
                       ("stretch denim", "rigid denim", "organic denim", "recycled denim"),
                       ("slim", "straight", "relaxed", "tapered", "wide-leg"),
                       ("everyday wear", "weekends", "casual Fridays", "city walks"), (40, 120)),
    "trousers": TypeWords(("trousers", "chinos", "tailored trousers", "pleated trousers", "slacks"),
                          ("cotton twill", "wool blend", "linen", "stretch cotton"),
                          ("slim", "straight", "wide", "tapered"),
                          ("the office", "weddings", "smart-casual days", "travel"), (35, 110)),
    "skirt": TypeWords(("skirt", "pleated skirt", "A-line skirt", "midi skirt", "mini skirt"),
                       ("crepe", "cotton", "satin", "wool blend", "corduroy"),
                       ("high-waisted", "flowing", "fitted", "relaxed"),
                       ("the office", "summer days", "evenings out", "weekends"), (25, 75)),
    "dress": TypeWords(("dress", "sundress", "midi dress", "wrap dress", "slip dress", "maxi dress"),
                       ("viscose", "cotton", "silk blend", "linen", "jersey"),
                       ("fitted", "flowing", "relaxed", "A-line"),
                       ("summer parties", "weddings", "evenings out", "holidays", "the office"), (35, 150)),
    "sneakers": TypeWords(("sneakers", "trainers", "low-top sneakers", "court shoes", "running shoes"),
                          ("leather", "canvas", "suede", "knit mesh", "recycled nylon"),
                          ("regular", "wide", "narrow"),
                          ("running", "city walks", "everyday wear", "the gym", "travel"), (45, 160)),
    "bag": TypeWords(("bag", "tote bag", "handbag", "shoulder bag", "shopper bag"),
                     ("leather", "vegan leather", "canvas", "nylon", "recycled cotton"), (),
                     ("work", "weekend trips", "shopping", "evenings out", "the beach"), (25, 200)),
    "hat": TypeWords(("cap", "baseball cap", "dad cap", "sports cap", "six-panel cap"),
                     ("cotton twill", "wool", "corduroy", "nylon"), (),
                     ("sunny days", "running", "festivals", "everyday wear", "hiking"), (12, 45)),
    "socks": TypeWords(("socks", "crew socks", "ankle socks", "sport socks", "everyday socks"),
                       ("cotton", "merino wool", "bamboo", "cotton blend"), (),
                       ("running", "everyday wear", "the gym", "hiking", "cold days"), (4, 18)),
}

PATTERN_WORDS: dict[str, tuple[str, ...]] = {
    "solid": ("plain", "solid-colour", "single-tone"),
    "striped": ("striped", "stripe", "Breton-stripe"),
    "checked": ("checked", "check", "gingham"),
    "dotted": ("polka-dot", "dotted", "spotted"),
    "floral": ("floral", "flower", "botanical"),
}


@dataclass(frozen=True)
class GenerationSummary:
    """What ``generate_catalog`` wrote, and how long it took."""

    out_dir: Path
    products: int
    images: int
    events: int
    shoppers: int
    sessions: int
    categories: int
    seconds: float

    def line(self) -> str:
        """A one-line human summary."""
        return (f"generated {self.products} products ({self.categories} categories), {self.images} images, "
                f"{self.events} events from {self.shoppers} shoppers in {self.sessions} sessions "
                f"→ {self.out_dir} in {self.seconds:.1f}s")


@dataclass(frozen=True)
class ProductTruth:
    """The hidden facts a synthetic product was made from (``truth.csv``)."""

    product_id: str
    product_type: str
    color: str
    pattern: str
    style_cluster: int


class _Draws:
    """Buffered uniform draws from one numpy Generator: fast scalar choices, still deterministic."""

    def __init__(self, rng: np.random.Generator, block: int = 8192) -> None:
        self._rng, self._block = rng, block
        self._buf: list[float] = []
        self._pos = 0

    def u(self) -> float:
        """One uniform draw in [0, 1)."""
        if self._pos >= len(self._buf):
            self._buf, self._pos = self._rng.random(self._block).tolist(), 0
        self._pos += 1
        return self._buf[self._pos - 1]

    def index(self, n: int) -> int:
        """A uniform index in ``range(n)``."""
        return min(int(self.u() * n), n - 1)

    def pick(self, items: Sequence[T]) -> T:
        """A uniformly chosen item."""
        return items[self.index(len(items))]

    def chance(self, p: float) -> bool:
        """True with probability ``p``."""
        return self.u() < p

    def weighted(self, cumulative: Sequence[float]) -> int:
        """An index drawn with the weights whose running sum is ``cumulative``."""
        i = bisect.bisect_right(cumulative, self.u() * cumulative[-1])
        return min(i, len(cumulative) - 1)


def _cumsum(weights: Sequence[float] | np.ndarray) -> list[float]:
    """Running sums of weights, as a plain list (for bisect)."""
    return np.cumsum(np.asarray(weights, dtype=np.float64)).tolist()


def _rng(seed: int, *stream: int) -> np.random.Generator:
    """An independent generator for one named stream of one seed."""
    return np.random.default_rng(np.random.SeedSequence([seed, *stream]))


def _id_width(n: int, minimum: int) -> int:
    """Digits of a zero-padded id for ``n`` items (at least ``minimum``)."""
    return max(minimum, len(str(n)))


# ----------------------------------------------------------------------------------------- catalog plan
ALL_BRANDS: tuple[str, ...] = tuple(BRAND_PRICE_FACTOR)
DARK_SECONDS: tuple[str, ...] = ("navy", "black", "red", "green", "blue")
LIGHT_SECONDS: tuple[str, ...] = ("white", "yellow", "pink", "beige")


@dataclass(frozen=True)
class _Design:
    """One product design; each of its colours is one product (a variant group when there are several)."""

    number: int
    first: int  # index of its first product
    category: int
    style: int
    pattern: str
    brand: str
    colors: tuple[str, ...]
    price: str
    seconds: tuple[str, str]  # pattern's second colour on a dark fill, on a light fill

    def secondary(self, color: str) -> str:
        """The pattern's second colour for one variant (contrasting with its fill)."""
        return self.seconds[1] if color in LIGHT_COLORS else self.seconds[0]


@dataclass(frozen=True)
class _Plan:
    """The hidden attributes of every product, as parallel arrays (index = product number - 1)."""

    designs: tuple[_Design, ...]
    category: np.ndarray
    color: np.ndarray
    pattern: np.ndarray
    style: np.ndarray
    design: np.ndarray
    popularity: np.ndarray
    in_stock: np.ndarray

    @property
    def size(self) -> int:
        """Number of products."""
        return len(self.category)


def _draw_colors(style: Style, k: int, draws: _Draws) -> tuple[str, ...]:
    """``k`` distinct colours, mostly from the style's own."""
    colors: list[str] = []
    while len(colors) < k:
        color = draws.pick(style.colors) if draws.chance(0.75) else draws.pick(COLOR_NAMES)
        if color not in colors:
            colors.append(color)
    return tuple(colors)


def _draw_price(product_type: str, brand: str, draws: _Draws) -> str:
    """A shop-like price (x.99, x.95, …) in the type's range, scaled by the brand."""
    low, high = WORDS[product_type].price
    value = (low + (high - low) * draws.u() ** 1.3) * BRAND_PRICE_FACTOR[brand]
    ending = draws.pick((0.99, 0.99, 0.99, 0.95, 0.0, 0.5))
    return f"{max(0, int(value) - 1) + ending:.2f}"


def _draw_design(number: int, first: int, room: int, draws: _Draws, cat_cum: list[float]) -> _Design:
    """One design: category, style, pattern, brand, 1–4 colour variants, price."""
    category = draws.weighted(cat_cum)
    style_no = draws.index(len(STYLES))
    style = STYLES[style_no]
    pattern = draws.pick(style.patterns) if draws.chance(0.8) else draws.pick(PATTERNS)
    brand = draws.pick(style.brands) if draws.chance(0.75) else draws.pick(ALL_BRANDS)
    variants = 1 if draws.chance(0.78) else 2 + draws.index(3)
    colors = _draw_colors(style, min(variants, room), draws)
    price = _draw_price(CATEGORIES[category].product_type, brand, draws)
    seconds = (draws.pick(LIGHT_SECONDS), draws.pick(DARK_SECONDS))
    return _Design(number, first, category, style_no, pattern, brand, colors, price, seconds)


def _plan_products(n_products: int, rng: np.random.Generator) -> _Plan:
    """Draw designs until there are exactly ``n_products`` products, then per-product popularity/stock."""
    draws, cat_cum = _Draws(rng), _cumsum([c.weight for c in CATEGORIES])
    designs: list[_Design] = []
    cols: dict[str, array] = {k: array("i") for k in ("category", "color", "pattern", "style", "design")}
    while len(cols["color"]) < n_products:
        count = len(cols["color"])
        design = _draw_design(len(designs), count, n_products - count, draws, cat_cum)
        designs.append(design)
        for color in design.colors:
            cols["category"].append(design.category)
            cols["color"].append(COLOR_NAMES.index(color))
            cols["pattern"].append(PATTERNS.index(design.pattern))
            cols["style"].append(design.style)
            cols["design"].append(design.number)
    arrays = {k: np.frombuffer(v, dtype=np.int32).copy() for k, v in cols.items()}
    popularity = rng.lognormal(0.0, 1.2, size=n_products)
    in_stock = rng.random(n_products) >= 0.08
    return _Plan(tuple(designs), popularity=popularity, in_stock=in_stock, **arrays)


# ------------------------------------------------------------------------------------------------ words
COLOR_SLOT = "{color}"  # replaced by each variant's colour name
_TITLES_WITH_COLOR = ("{color} {noun}", "{brand} {color} {noun}", "{adj} {noun} in {color}",
                      "{material} {noun} – {color}", "{fit} {color} {noun}")
_TITLES_PLAIN = ("{brand} {adj} {noun}", "{adj} {material} {noun}", "{noun} in {material}",
                 "{fit} {noun} by {brand}", "the {adj} {noun}")
_OPENERS = ("{a}{adj} {noun} made from {material}.", "our {adj} {noun}, cut from {material}.",
            "{material} {noun} with a {adj} feel.", "{this} {noun} from {brand} {is} made of {material}.")
_FIT_LINES = ("cut for a {fit} fit.", "the {fit} fit works with almost anything.", "{fit} fit, true to size.")
_USE_LINES = ("made for {use}.", "great for {use}.", "an easy pick for {use}.", "built with {use} in mind.")
_PATTERN_LINES = ("features a {pattern} print.", "finished in a {pattern} design.",
                  "a {pattern} look that stands out.", "{pattern} fabric throughout.")
_PLAIN_LINES = ("kept {pattern}, with no print.", "a clean {pattern} finish.")
_COLOR_LINES = ("shown here in {color}.", "this one comes in {color}.", "the {color} shade is easy to pair.")
_CARE_LINES = ("machine wash at 30°C.", "machine washable.", "hand wash recommended.")
_WIPE_TYPES = ("bag", "sneakers", "hat")


_AN = re.compile(r"\b([Aa]) (?=[AEIOUaeiou])")


def _sentence(text: str) -> str:
    """Capitalise the first letter and use "an" before a vowel."""
    text = _AN.sub(lambda m: m.group(1) + "n ", text)
    return text[:1].upper() + text[1:]


def _noun_slots(noun: str) -> dict[str, str]:
    """Article and verb forms agreeing with a singular or plural noun ("a dress", "these jeans")."""
    plural = noun.endswith("s") and not noun.endswith("ss")
    return {"noun": noun, "a": "" if plural else "a ", "this": "these" if plural else "this",
            "is": "are" if plural else "is"}


def _fill(template: str, slots: dict[str, str]) -> str:
    """Fill ``{name}`` slots (``{color}`` is kept for the variants) without str.format's brace rules."""
    for name, value in slots.items():
        template = template.replace("{" + name + "}", value)
    return template


def _shuffled(items: list[str], draws: _Draws) -> list[str]:
    """A Fisher–Yates shuffle driven by the draws."""
    items = list(items)
    for i in range(len(items) - 1, 0, -1):
        j = draws.index(i + 1)
        items[i], items[j] = items[j], items[i]
    return items


def _design_words(design: _Design, draws: _Draws) -> tuple[str, str]:
    """Title and description templates of a design; only ``{color}`` is left to fill per variant."""
    product_type = CATEGORIES[design.category].product_type
    words, style = WORDS[product_type], STYLES[design.style]
    slots = {**_noun_slots(draws.pick(words.nouns)), "adj": draws.pick(style.adjectives),
             "brand": design.brand, "material": draws.pick(words.materials), "use": draws.pick(words.uses),
             "fit": draws.pick(words.fits) if words.fits else "",
             "pattern": draws.pick(PATTERN_WORDS[design.pattern])}
    color_in_title = draws.chance(0.5)
    templates = _TITLES_WITH_COLOR if color_in_title else _TITLES_PLAIN
    titles = [t for t in templates if slots["fit"] or "{fit}" not in t]
    title = _sentence(_fill(draws.pick(titles), slots))
    lines = [draws.pick(_USE_LINES)]
    if slots["fit"]:
        lines.append(draws.pick(_FIT_LINES))
    if draws.chance(0.4):
        lines.append(draws.pick(_PLAIN_LINES if design.pattern == "solid" else _PATTERN_LINES))
    if draws.chance(0.1 if color_in_title else 0.25):
        lines.append(draws.pick(_COLOR_LINES))
    if draws.chance(0.5):
        wipe = product_type in _WIPE_TYPES
        lines.append("wipe clean with a damp cloth." if wipe else draws.pick(_CARE_LINES))
    if draws.chance(0.3):
        lines.append("designed by {brand}.")
    text = [draws.pick(_OPENERS), *_shuffled(lines, draws)]
    return title, " ".join(_sentence(_fill(line, slots)) for line in text)


# ------------------------------------------------------------------------------- products, truth, images
@dataclass(frozen=True)
class _ImageJob:
    """One picture to draw: where, what, how big, and its own seed."""

    path: Path
    look: Look
    size: int
    seed: tuple[int, ...]


def _draw_image(job: _ImageJob) -> None:
    """Render and save one picture (deterministic from the job alone)."""
    rng = np.random.default_rng(np.random.SeedSequence(job.seed))
    save_png(render_look(job.look, job.size, rng), job.path)


def _product_rows(
    plan: _Plan, seed: int, image_size: int, out: Path
) -> Iterator[tuple[list[str], list[object], _ImageJob]]:
    """Yield (products.csv row, truth.csv row, image job) for every product, in id order."""
    id_width = _id_width(plan.size, 5)
    group_width = _id_width(len(plan.designs), 4)
    for design in plan.designs:
        title, description = _design_words(design, _Draws(_rng(seed, 2, design.number), block=64))
        category = CATEGORIES[design.category]
        group = f"G{design.number + 1:0{group_width}d}" if len(design.colors) > 1 else ""
        for offset, color in enumerate(design.colors):
            index = design.first + offset
            pid = f"P{index + 1:0{id_width}d}"
            image = f"images/{pid}.png"
            stock = "true" if plan.in_stock[index] else "false"
            row = [pid, _sentence(title.replace(COLOR_SLOT, color)), description.replace(COLOR_SLOT, color),
                   category.path, color, design.brand, design.price, stock, image, group]
            truth = [pid, category.product_type, color, design.pattern, design.style]
            look = Look(category.product_type, color, design.pattern, design.secondary(color))
            yield row, truth, _ImageJob(out / image, look, image_size, (seed, 3, index))


def _batches(items: Iterator[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of up to ``size`` items."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _write_products(out: Path, plan: _Plan, seed: int, image_size: int, progress: bool, workers: int) -> int:
    """Stream products.csv, truth.csv and one PNG per product to ``out``; return the number of images."""
    (out / "images").mkdir(parents=True, exist_ok=True)
    images = 0
    pool = multiprocessing.Pool(workers) if workers > 1 else None
    try:
        with (open(out / "products.csv", "w", newline="", encoding="utf-8") as products_file,
              open(out / "truth.csv", "w", newline="", encoding="utf-8") as truth_file,
              tqdm(total=plan.size, unit="product", disable=not progress) as bar):
            products = csv.writer(products_file, lineterminator="\n")
            truths = csv.writer(truth_file, lineterminator="\n")
            products.writerow(PRODUCT_COLUMNS)
            truths.writerow(TRUTH_COLUMNS)
            for batch in _batches(_product_rows(plan, seed, image_size, out), 256):
                products.writerows(row for row, _, _ in batch)
                truths.writerows(truth for _, truth, _ in batch)
                jobs = [job for _, _, job in batch]
                if pool:
                    pool.map(_draw_image, jobs, chunksize=32)
                else:
                    for one in jobs:
                        _draw_image(one)
                images += len(jobs)
                bar.update(len(jobs))
    finally:
        if pool:
            pool.close()
            pool.join()
    return images


# ------------------------------------------------------------------------------------------- shoppers
_ALL, _BY_COLOR, _BY_STYLE, _BY_PATTERN = range(4)
_HOUR_WEIGHTS = (1.0, 0.5, 0.3, 0.2, 0.2, 0.3, 0.6, 1.0, 1.5, 2.0, 2.2, 2.4,
                 2.6, 2.4, 2.2, 2.2, 2.4, 2.8, 3.2, 3.6, 3.6, 3.0, 2.2, 1.5)
_SESSION_SECONDS = 3600  # an upper bound on one session's length (10 events × < 4 min)


@dataclass(frozen=True)
class _Shopper:
    """A simulated shopper's tastes: looks (style, colour, pattern) and category affinity."""

    gender: str
    style: int
    color: int
    pattern: int
    affinity: list[float]  # cumulative weights over CATEGORIES (0 for the other gender / empty ones)


@dataclass(frozen=True)
class _World:
    """The plan plus the lookup tables the simulation samples from."""

    plan: _Plan
    groups: dict[tuple[int, int, int], tuple[list[int], list[float]]]
    complement: dict[tuple[int, str], int]  # (category, shopper gender) → complement category
    partners: dict[str, list[tuple[int, ...]]]  # gender → per product, its "complete the look" products


def _groups(plan: _Plan) -> dict[tuple[int, int, int], tuple[list[int], list[float]]]:
    """Products by (category, attribute kind, value), each with cumulative popularity for sampling."""
    members: dict[tuple[int, int, int], list[int]] = {}
    columns = (plan.color.tolist(), plan.style.tolist(), plan.pattern.tolist())
    for index, category in enumerate(plan.category.tolist()):
        members.setdefault((category, _ALL, 0), []).append(index)
        for kind, column in zip((_BY_COLOR, _BY_STYLE, _BY_PATTERN), columns, strict=True):
            members.setdefault((category, kind, column[index]), []).append(index)
    return {key: (items, _cumsum(plan.popularity[items])) for key, items in members.items()}


def _complements(groups: dict) -> dict[tuple[int, str], int]:
    """For each category and shopper gender, the non-empty complement category (if any)."""
    table: dict[tuple[int, str], int] = {}
    for index, category in enumerate(CATEGORIES):
        wanted = COMPLEMENTS[category.product_type]
        for gender in GENDERS:
            for target, other in enumerate(CATEGORIES):
                fits = other.product_type == wanted and other.gender in (gender, "unisex")
                if fits and (target, _ALL, 0) in groups:
                    table[(index, gender)] = target
    return table


def _sample(groups: dict, key: tuple[int, int, int], category: int, draws: _Draws) -> int:
    """A popularity-weighted product from a group (the whole category when the group is empty)."""
    items, cumulative = groups.get(key) or groups[(category, _ALL, 0)]
    return items[draws.weighted(cumulative)]


def _partners(plan: _Plan, groups: dict, complement: dict, draws: _Draws) -> dict[str, list[tuple[int, ...]]]:
    """Three "goes with" products per product and gender, from its complement category, same style first."""
    table: dict[str, list[tuple[int, ...]]] = {}
    for gender in GENDERS:
        rows: list[tuple[int, ...]] = []
        for category, style in zip(plan.category.tolist(), plan.style.tolist(), strict=True):
            target = complement.get((category, gender))
            if target is None or CATEGORIES[category].gender not in (gender, "unisex"):
                rows.append(())
                continue
            rows.append(tuple(_sample(groups, (target, _BY_STYLE, style), target, draws) for _ in range(3)))
        table[gender] = rows
    return table


def _build_world(plan: _Plan, rng: np.random.Generator) -> _World:
    """Index the plan for the simulation."""
    groups = _groups(plan)
    complement = _complements(groups)
    return _World(plan, groups, complement, _partners(plan, groups, complement, _Draws(rng)))


def _draw_shoppers(n_shoppers: int, world: _World, rng: np.random.Generator) -> list[_Shopper]:
    """Shoppers with a gender, a style (favourite colour and pattern) and peaked category affinities."""
    shoppers = []
    for _ in range(n_shoppers):
        gender = GENDERS[int(rng.random() < 0.55)]
        style_no = int(rng.integers(len(STYLES)))
        style = STYLES[style_no]
        color = style.colors[int(rng.integers(len(style.colors)))]
        pattern = style.patterns[int(rng.integers(len(style.patterns)))]
        weights = rng.dirichlet(np.full(len(CATEGORIES), 0.6))
        for index, category in enumerate(CATEGORIES):
            if category.gender not in (gender, "unisex") or (index, _ALL, 0) not in world.groups:
                weights[index] = 0.0
        if weights.sum() <= 0:  # a tiny catalog with nothing for this gender
            weights = np.array([float((i, _ALL, 0) in world.groups) for i in range(len(CATEGORIES))])
        shoppers.append(_Shopper(gender, style_no, COLOR_NAMES.index(color), PATTERNS.index(pattern),
                                 _cumsum(weights)))
    return shoppers


# ------------------------------------------------------------------------------------------- sessions
def _pick(world: _World, category: int, look: tuple[int, int, int], draws: _Draws) -> int:
    """A product of a category, often one sharing a look (colour, style or pattern) with ``look``."""
    r = draws.u()
    color, style, pattern = look
    if r < 0.40:
        key = (category, _BY_COLOR, color)
    elif r < 0.65:
        key = (category, _BY_STYLE, style)
    elif r < 0.80:
        key = (category, _BY_PATTERN, pattern)
    else:
        key = (category, _ALL, 0)
    return _sample(world.groups, key, category, draws)


def _look_of(plan: _Plan, product: int) -> tuple[int, int, int]:
    """A product's (colour, style, pattern)."""
    return int(plan.color[product]), int(plan.style[product]), int(plan.pattern[product])


def _next_product(world: _World, shopper: _Shopper, current: int, draws: _Draws) -> int:
    """Where a shopper goes next: a complement, a similar-looking item, a variant, or a new category."""
    plan, taste = world.plan, (shopper.color, shopper.style, shopper.pattern)
    category = int(plan.category[current])
    r = draws.u()
    if r < 0.38:
        partners = world.partners[shopper.gender][current]
        if partners and draws.chance(0.6):
            return draws.pick(partners)
        target = world.complement.get((category, shopper.gender))
        if target is not None:
            return _pick(world, target, taste, draws)
    elif r < 0.72:
        return _pick(world, category, _look_of(plan, current), draws)
    elif r < 0.78:
        design = plan.designs[int(plan.design[current])]
        if len(design.colors) > 1:
            return design.first + draws.index(len(design.colors))
    return _pick(world, draws.weighted(shopper.affinity), taste, draws)


def _cart_chance(plan: _Plan, shopper: _Shopper, product: int) -> float:
    """How likely a viewed product goes to the cart: higher when it matches the shopper's looks."""
    if not plan.in_stock[product]:
        return 0.0
    same_color, same_style = plan.color[product] == shopper.color, plan.style[product] == shopper.style
    return 0.08 + 0.10 * float(same_color) + 0.08 * float(same_style)


def _session(world: _World, shopper: _Shopper, draws: _Draws) -> list[tuple[int, int]]:
    """One visit of 2–10 events: (product, event type index) in order."""
    length = 2 + draws.index(9)
    taste = (shopper.color, shopper.style, shopper.pattern)
    current = _pick(world, draws.weighted(shopper.affinity), taste, draws)
    events, carted = [(current, 0)], []
    while len(events) < length:
        if current not in carted and draws.chance(_cart_chance(world.plan, shopper, current)):
            events.append((current, 1))
            carted.append(current)
            continue
        following = _next_product(world, shopper, current, draws)
        if following == current:
            following = _next_product(world, shopper, current, draws)
        current = following
        events.append((current, 0))
    for product in carted:
        if len(events) < 10 and draws.chance(0.5):
            events.append((product, 2))
    return events


def _session_start(busy: list[int], draws: _Draws, hour_cum: list[float]) -> int:
    """A start second within the span, not overlapping the shopper's other sessions (``busy``, sorted)."""
    start = 0
    for _ in range(8):
        day, hour = draws.index(SPAN_DAYS), draws.weighted(hour_cum)
        start = day * 86400 + hour * 3600 + draws.index(3600)
        i = bisect.bisect_left(busy, start)
        clear_before = i == 0 or busy[i - 1] + _SESSION_SECONDS <= start
        if clear_before and (i == len(busy) or start + _SESSION_SECONDS <= busy[i]):
            break
    bisect.insort(busy, start)
    return start


@dataclass(frozen=True)
class _EventLog:
    """Simulated events as compact parallel arrays (unsorted)."""

    user: array
    product: array
    kind: array
    second: array
    session: array

    def append(self, user: int, product: int, kind: int, second: int, session: int) -> None:
        """Add one event."""
        self.user.append(user)
        self.product.append(product)
        self.kind.append(kind)
        self.second.append(second)
        self.session.append(session)


def _simulate(world: _World, shoppers: list[_Shopper], n_events: int, rng: np.random.Generator,
              progress: bool) -> tuple[_EventLog, int]:
    """Sessions until ``n_events`` events: every shopper once, then by (skewed) activity."""
    draws = _Draws(rng)
    activity = _cumsum(rng.lognormal(0.0, 0.9, size=len(shoppers)))
    hour_cum = _cumsum(_HOUR_WEIGHTS)
    busy: list[list[int]] = [[] for _ in shoppers]
    log = _EventLog(array("i"), array("i"), array("b"), array("q"), array("i"))
    sessions = 0
    with tqdm(total=n_events, unit="event", disable=not progress) as bar:
        while len(log.user) < n_events or sessions < len(shoppers):
            user = sessions if sessions < len(shoppers) else draws.weighted(activity)
            second = _session_start(busy[user], draws, hour_cum)
            for product, kind in _session(world, shoppers[user], draws):
                second += 5 + draws.index(40) if kind == 1 else 10 + draws.index(170)
                log.append(user, product, kind, second, sessions)
            bar.update(min(len(log.user), n_events) - bar.n)
            sessions += 1
    return log, sessions


def _timestamp(second: int) -> str:
    """ISO 8601 UTC with a Z, ``second`` seconds after START."""
    return (START + timedelta(seconds=second)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _write_events(path: Path, log: _EventLog, n_products: int, n_shoppers: int, n_sessions: int) -> int:
    """Write events.csv sorted by timestamp (ties keep simulation order); return the row count."""
    seconds = np.frombuffer(log.second, dtype=np.int64)
    order = np.argsort(seconds, kind="stable").tolist()
    pid_w, uid_w, sid_w = _id_width(n_products, 5), _id_width(n_shoppers, 4), _id_width(n_sessions, 6)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(EVENT_COLUMNS)
        for i in order:
            user, product, session = log.user[i] + 1, log.product[i] + 1, log.session[i] + 1
            writer.writerow((f"U{user:0{uid_w}d}", f"P{product:0{pid_w}d}", EVENT_TYPES[log.kind[i]],
                             _timestamp(log.second[i]), f"S{session:0{sid_w}d}"))
    return len(order)


# --------------------------------------------------------------------------------------------- public
def generate_catalog(out_dir: Path | str, n_products: int = 360, n_shoppers: int = 320, n_events: int = 6000,
                     seed: int = 7, image_size: int = 96, progress: bool = True,
                     workers: int | None = None) -> GenerationSummary:
    """Write a synthetic shop (products.csv, images/, events.csv, truth.csv) to ``out_dir``.

    ``workers`` processes draw the pictures (default: up to 4 for catalogs of 2,000+ products);
    the output does not depend on it. ``progress`` shows tqdm bars and prints the summary line.
    """
    if n_products < 1 or n_shoppers < 1 or n_events < 0 or image_size < 16:
        raise ValueError("need n_products ≥ 1, n_shoppers ≥ 1, n_events ≥ 0 and image_size ≥ 16")
    began = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plan = _plan_products(n_products, _rng(seed, 1))
    if workers is None:
        workers = min(4, os.cpu_count() or 1) if n_products >= 2000 else 1
    images = _write_products(out, plan, seed, image_size, progress, max(1, workers))
    world = _build_world(plan, _rng(seed, 4))
    shoppers = _draw_shoppers(n_shoppers, world, _rng(seed, 5))
    log, sessions = _simulate(world, shoppers, n_events, _rng(seed, 6), progress)
    events = _write_events(out / "events.csv", log, n_products, n_shoppers, sessions)
    categories = len({int(c) for c in plan.category})
    summary = GenerationSummary(out, n_products, images, events, n_shoppers, sessions, categories,
                                round(time.perf_counter() - began, 3))
    if progress:
        print(summary.line())
    return summary


def read_truth(catalog_dir: Path | str) -> dict[str, ProductTruth]:
    """The hidden per-product facts (``truth.csv``) of a generated catalog, by product id."""
    with open(Path(catalog_dir) / "truth.csv", newline="", encoding="utf-8") as handle:
        return {row["product_id"]: ProductTruth(row["product_id"], row["product_type"], row["color"],
                                                row["pattern"], int(row["style_cluster"]))
                for row in csv.DictReader(handle)}


def complement_of(product_type: str) -> str:
    """The product type shoppers tend to look at after ``product_type``."""
    return COMPLEMENTS[product_type]
