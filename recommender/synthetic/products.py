"""The synthetic catalog: a plan of designs and colour variants, their titles and descriptions, truth rows and
pictures, streamed to products.csv, truth.csv and images/."""

from __future__ import annotations

import csv
import multiprocessing
import re
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from recommender.synthetic.draws import Draws, T, cumsum, id_width, stream_rng
from recommender.synthetic.images import COLOR_NAMES, LIGHT_COLORS, PATTERNS, Look, render_look, save_png
from recommender.synthetic.vocabulary import (
    BRAND_PRICE_FACTOR,
    CATEGORIES,
    PATTERN_WORDS,
    PRODUCT_COLUMNS,
    STYLES,
    TRUTH_COLUMNS,
    WORDS,
    Style,
)

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
class Plan:
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


def _draw_colors(style: Style, k: int, draws: Draws) -> tuple[str, ...]:
    """``k`` distinct colours, mostly from the style's own."""
    colors: list[str] = []
    while len(colors) < k:
        color = draws.pick(style.colors) if draws.chance(0.75) else draws.pick(COLOR_NAMES)
        if color not in colors:
            colors.append(color)
    return tuple(colors)


def _draw_price(product_type: str, brand: str, draws: Draws) -> str:
    """A shop-like price (x.99, x.95, …) in the type's range, scaled by the brand."""
    low, high = WORDS[product_type].price
    value = (low + (high - low) * draws.u() ** 1.3) * BRAND_PRICE_FACTOR[brand]
    ending = draws.pick((0.99, 0.99, 0.99, 0.95, 0.0, 0.5))
    return f"{max(0, int(value) - 1) + ending:.2f}"


def _draw_design(number: int, first: int, room: int, draws: Draws, cat_cum: list[float]) -> _Design:
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


def plan_products(n_products: int, rng: np.random.Generator) -> Plan:
    """Draw designs until there are exactly ``n_products`` products, then per-product popularity/stock."""
    draws, cat_cum = Draws(rng), cumsum([c.weight for c in CATEGORIES])
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
    return Plan(tuple(designs), popularity=popularity, in_stock=in_stock, **arrays)


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


def _shuffled(items: list[str], draws: Draws) -> list[str]:
    """A Fisher–Yates shuffle driven by the draws."""
    items = list(items)
    for i in range(len(items) - 1, 0, -1):
        j = draws.index(i + 1)
        items[i], items[j] = items[j], items[i]
    return items


def _design_words(design: _Design, draws: Draws) -> tuple[str, str]:
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
    plan: Plan, seed: int, image_size: int, out: Path
) -> Iterator[tuple[list[str], list[object], _ImageJob]]:
    """Yield (products.csv row, truth.csv row, image job) for every product, in id order."""
    pid_width = id_width(plan.size, 5)
    group_width = id_width(len(plan.designs), 4)
    for design in plan.designs:
        title, description = _design_words(design, Draws(stream_rng(seed, 2, design.number), block=64))
        category = CATEGORIES[design.category]
        group = f"G{design.number + 1:0{group_width}d}" if len(design.colors) > 1 else ""
        for offset, color in enumerate(design.colors):
            index = design.first + offset
            pid = f"P{index + 1:0{pid_width}d}"
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


def write_products(out: Path, plan: Plan, seed: int, image_size: int, progress: bool, workers: int) -> int:
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
