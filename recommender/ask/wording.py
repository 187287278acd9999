"""Wording for answers: catalog text made safe to print, shopper words made safe to quote, and the phrases
built from a plan's constraint values ("navy Timeless trainers for men under 50 (not leather)", "in navy, not
black"). Nothing here reads model text; every word comes from a record, a constraint value or this module.
"""

from __future__ import annotations

import re

from recommender.ask.model import ATTR_PREFIX, Constraint, Plan
from recommender.domain import Product
from recommender.explain.evidence import clean_text
from recommender.explain.guard import INJECTION_PHRASES, INSTRUCTION_LIKE, LINK_OR_MARKUP

TITLE_CHARS = 60
VALUE_CHARS = 40
SHOPPER_CHARS = 40
DESCRIPTION_CHARS = 200
# Audience values said as "for men" rather than as an adjective, whichever field holds them.
AUDIENCES = frozenset({"men", "women", "boys", "girls", "kids", "unisex", "baby", "babies", "teens", "children"})
_URL = re.compile(r"(?:https?://|www\.)\S*", re.IGNORECASE)
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def clean_value(text: str, limit: int = VALUE_CHARS) -> str:
    """Catalog text made safe to print: links, e-mails, markup and control characters dropped, length capped."""
    return clean_text(LINK_OR_MARKUP.sub(" ", _URL.sub(" ", text)), limit).strip(" ,;:-")


def shopper_words(text: str, limit: int = SHOPPER_CHARS) -> str:
    """A shopper's words reduced to letters, digits and spaces (≤ ``limit`` chars), safe to quote back."""
    kept = " ".join("".join(ch if ch.isalnum() else " " for ch in text).split())
    return kept[:limit].strip()


def product_name(product: Product) -> str:
    """How a product is named in an answer: its cleaned title, or its id when the title reads as an order."""
    title = clean_value(product.title, TITLE_CHARS)
    if not title or INJECTION_PHRASES.search(product.title) or _URL.search(product.title):
        return f"product {clean_value(product.product_id)}"
    return title


def safe_description(product: Product, limit: int = DESCRIPTION_CHARS) -> str:
    """The description's leading sentences that neither read as instructions nor carry links, capped."""
    kept: list[str] = []
    for sentence in _SENTENCE.split(clean_text(product.description, 4 * limit)):
        if INSTRUCTION_LIKE.search(sentence) or INJECTION_PHRASES.search(sentence) or LINK_OR_MARKUP.search(sentence):
            continue
        if len(" ".join([*kept, sentence])) > limit:
            break
        kept.append(sentence)
    return clean_value(" ".join(kept), limit)


def join_words(items: list[str], last: str = "and") -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    if len(items) < 2:
        return "".join(items)
    return f"{', '.join(items[:-1])} {last} {items[-1]}"


def _values(c: Constraint, lower: bool = True) -> list[str]:
    vals = [clean_value(v) for v in c.values]
    out = [v.lower() if lower else v for v in vals if v]
    if c.field == "category":  # "Sandal" and "Sandals" are one thing to a shopper
        out = list(dict.fromkeys(v if v.casefold() in AUDIENCES else plural(v) for v in out))
    return out


def plural(noun: str) -> str:
    """A product type as shoppers say it in general ("skirts", "dresses", "t-shirts"); "jeans" stays."""
    words = noun.split()
    last = words[-1] if words else noun
    if not last or (last.endswith("s") and not last.endswith("ss")) or not last[-1].isalpha():
        return noun
    if last.endswith(("ss", "sh", "ch", "x", "z")):
        last += "es"
    elif last.endswith("y") and last[-2:-1] not in ("a", "e", "i", "o", "u"):
        last = last[:-1] + "ies"
    else:
        last += "s"
    return " ".join([*words[:-1], last])


class Described:
    """A plan's constraints sorted into the parts of a phrase (colour, adjectives, brand, noun, audience, …)."""

    def __init__(self, plan: Plan, currency: str = "") -> None:
        self.colours: list[str] = []
        self.adjectives: list[str] = []
        self.brands: list[str] = []
        self.nouns: list[str] = []
        self.audience: list[str] = []
        self.price = ""
        self.negations: list[str] = []
        for c in plan.constraints:
            self._add(c, currency)
        self.free = shopper_words(plan.query_text)
        # words no product mentions still describe what was asked ("black sandals for men"), never dropped
        absent = [shopper_words(u.words) for u in plan.unmet if u.absent and shopper_words(u.words)]
        if absent and not self.nouns:
            self.nouns.append(absent.pop())
        self.adjectives += absent

    def _add(self, c: Constraint, currency: str) -> None:
        if c.op == "range":
            self.price = price_phrase(c, currency)
            return
        if c.field == "in_stock":
            return
        if c.negated:
            if vals := _values(c, lower=c.field != "brand"):
                self.negations.append("not " + join_words(vals, "or"))
            return
        vals = _values(c, lower=c.field != "brand")
        self.audience += [v.lower() for v in vals if v.casefold() in AUDIENCES]
        rest = join_words([v for v in vals if v.casefold() not in AUDIENCES], "or")
        if rest:
            target = {"color": self.colours, "brand": self.brands, "category": self.nouns}.get(c.field)
            (target if target is not None else self.adjectives).append(rest)

    def counted(self, n: int) -> str:
        """``12 black sandals``, ``1 match for black sandals``, ``1 matching product`` (n shown as a digit)."""
        if not (self.nouns or self.colours or self.adjectives or self.brands):
            return f"{n} matching product{'s' if n != 1 else ''}{self._tail()}"
        return f"{n} {self.noun_phrase()}" if n != 1 else f"1 match for {self.noun_phrase()}"

    def noun_phrase(self) -> str:
        """E.g. ``navy Timeless trainers for men under 50 (not leather)``."""
        bare = not (self.colours or self.adjectives or self.brands)
        noun = plural(self.nouns[-1]) if self.nouns else "matching products" if bare else "products"
        if not self.nouns and self.free:  # the shopper's own words, searched but not a catalog value
            noun = f"{noun} for '{self.free}'"
        words = [*self.colours, *self.adjectives, *self.nouns[:-1], *self.brands, noun]
        return " ".join(words) + self._tail()

    def only_colours(self) -> str:
        """``navy or black`` when colours are all the plan asks for ("does it come in navy?"), else ``""``."""
        others = self.adjectives or self.brands or self.nouns or self.audience or self.price or self.negations
        return "" if others else join_words(self.colours, "or")

    def qualifiers(self) -> str:
        """E.g. ``in blue by Nike among sandals for men under 50`` (for "like this but …")."""
        parts = [f"in {join_words(self.colours)}"] if self.colours else []
        parts += [f"by {join_words(self.brands)}"] if self.brands else []
        if self.nouns or self.adjectives:
            parts.append("among " + " ".join([*self.adjectives, *self.nouns]))
        return (" ".join(parts) + self._tail()).strip()

    def _tail(self) -> str:
        named = [a for a in self.audience if a != "unisex"]
        # "unisex" rides along with "for men"/"for women" (the planner adds it): say it as an aside
        audience = f"{join_words(named)} (and unisex)" if named and len(named) < len(self.audience) else \
            join_words(self.audience)
        tail = f" for {audience}" if self.audience else ""
        tail += f" {self.price}" if self.price else ""
        return tail + (f" ({', '.join(self.negations)})" if self.negations else "")


def price_phrase(c: Constraint, currency: str = "") -> str:
    """``under 50``, ``over 20``, ``between 20 and 50``."""
    if c.low is not None and c.high is not None:
        return f"between {currency}{c.low:g} and {currency}{c.high:g}"
    return f"under {currency}{c.high:g}" if c.high is not None else f"over {currency}{c.low:g}"


def miss_label(c: Constraint, p: Product, currency: str = "") -> str:
    """How ``p`` fails ``c``, in words from its record and the constraint (e.g. ``in navy, not black``)."""
    wanted = join_words(_values(c, lower=c.field != "brand"), "or")
    if c.op == "range":
        if p.price is None:
            return "no listed price"
        over = c.high is not None and p.price > c.high
        return f"at {currency}{p.price:.2f}, {'over' if over else 'under'} {currency}{c.high if over else c.low:g}"
    if c.field == "in_stock":
        return "sold out" if not p.in_stock else "in stock"
    if c.field == "text":
        return f"mentions {wanted}" if c.negated else f"doesn't mention {wanted}"
    have = _record_value(c, p)
    if c.negated:
        return have or wanted
    name = {"color": "colour"}.get(c.field, clean_value(c.field.removeprefix(ATTR_PREFIX)).replace("_", " "))
    return f"{have or 'no listed ' + name}, not {wanted}"


def _record_value(c: Constraint, p: Product) -> str:
    if c.field == "color":
        return f"in {clean_value(p.color).lower()}" if clean_value(p.color) else ""
    if c.field == "brand":
        return f"by {clean_value(p.brand)}" if clean_value(p.brand) else ""
    if c.field == "category":
        return clean_value(p.category[-1]).lower() if p.category else ""
    column = c.field.removeprefix(ATTR_PREFIX)
    value = clean_value(dict(p.attributes).get(column, ""))
    return f"{clean_value(column).replace('_', ' ')} {value.lower()}" if value else ""


UNMET_REASONS = {
    "unknown": "no product in the catalog mentions it",
    "not_in_catalog": "no product in the catalog mentions it",
    "unsupported": "the catalog has no field for it",
    "ambiguous": "it could mean more than one thing",
    "no_viewed_product": "no product is open",
}


def unmet_reason(reason: str) -> str:
    """A planner reason said plainly: a known code's phrase, else its own words reduced to plain text."""
    code = reason.strip().casefold()
    if code in UNMET_REASONS:
        return UNMET_REASONS[code]
    words = shopper_words(reason, 80).lower()
    if not words or "_" in reason or INJECTION_PHRASES.search(reason):
        return UNMET_REASONS["unknown"]
    return words
