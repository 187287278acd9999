"""The synthetic shop's vocabulary: columns, categories and their complements, styles, brands and words."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

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
