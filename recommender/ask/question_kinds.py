"""The question kinds, each built from a ``CatalogIndex``: candidates come from the index's counts (so every
gold claim — "≥ 3 in stock", "none in stock" — is exact), are grouped in families (colour + type, type +
usage, …) and picked round-robin after a seeded shuffle, so a run is deterministic and varied."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from recommender.ask.model import ATTR_PREFIX, Constraint
from recommender.ask.question_index import GENDERS, ODD_ADJECTIVES, ODD_NOUNS, UNISEX, CatalogIndex, plural
from recommender.ask.question_model import Question

MIN_MATCHES = 3  # combined/negation/price questions need at least this many in-stock answers


@dataclass(frozen=True)
class Term:
    """One gold constraint and the words that say it, before or after the product type."""

    constraint: Constraint
    before: str = ""
    after: str = ""


@dataclass(frozen=True)
class Draft:
    """A question before it gets an id."""

    text: str
    constraints: tuple[Constraint, ...] = ()
    answerable: bool = True
    available: bool | None = None
    image: str | None = None
    target: str | None = None


def type_term(index: CatalogIndex, t: str) -> tuple[Term, str]:
    """A category level as the noun of a question (plural, lower-case) and its constraint."""
    noun = plural(index.name("cat", t))
    return Term(Constraint("category", values=(index.name("cat", t),), words=noun)), noun


def colour_term(index: CatalogIndex, c: str) -> Term:
    """A colour as the shopper types it, before the noun."""
    return Term(Constraint("color", values=(index.name("color", c),), words=c), before=c)


def gender_term(index: CatalogIndex, g: str) -> Term:
    """``for men``: men's and unisex products both answer it."""
    values: tuple[str, ...] = (index.name("cat", g),)
    if g in ("men", "women") and ("cat", UNISEX) in index.count:
        values += (index.name("cat", UNISEX),)
    return Term(Constraint("category", values=values, words=f"for {g}"), after=f"for {g}")


def attr_term(index: CatalogIndex, column: str, v: str) -> Term:
    """An extra column's value: ``casual`` before the noun, ``for summer`` after it."""
    name = index.name(f"attr:{column}", v)
    words = f"for {v}" if column == "season" else v
    c = Constraint(f"{ATTR_PREFIX}{column}", values=(name,), words=words)
    return Term(c, after=words) if column == "season" else Term(c, before=words)


def brand_term(index: CatalogIndex, b: str) -> Term:
    """A brand, before the noun."""
    return Term(Constraint("brand", values=(index.name("brand", b),), words=b), before=b)


def phrase(noun: str, terms: Sequence[Term]) -> str:
    """``black casual shoes for men``."""
    return " ".join([*(t.before for t in terms if t.before), noun, *(t.after for t in terms if t.after)])


def pick(families: Sequence[Sequence[Draft]], rng: random.Random, n: int) -> list[Draft]:
    """Up to ``n`` drafts, round-robin over families (each shuffled with ``rng``), no two alike."""
    pools = [rng.sample(list(f), len(f)) for f in families if f]
    out: list[Draft] = []
    texts: set[tuple[str, str | None, str | None]] = set()
    while len(out) < n and any(pools):
        for pool in pools:
            while pool and len(out) < n:
                draft = pool.pop()
                key = (draft.text, draft.image, draft.target)
                if key not in texts:
                    texts.add(key)
                    out.append(draft)
                    break
    return out


def _types(index: CatalogIndex, least: int = 1) -> list[str]:
    return sorted(t for t in index.leaves if index.count[("cat", t)] >= least)


def _keys(index: CatalogIndex, kind: str) -> list[tuple[str, ...]]:
    return sorted(k[1:] for k, n in index.count.items() if k[0] == kind and n > 0)


def _gender_count(index: CatalogIndex, key: tuple[str, ...], g: str) -> int:
    extra = index.count[(*key, UNISEX)] if g in ("men", "women") else 0
    return index.count[(*key, g)] + extra


def _usable_attr(index: CatalogIndex, column: str, v: str, noun: str) -> bool:
    # "casual casual shoes" says nothing new; skip values already in the type's name.
    return column in index.small_columns() and v not in noun.split()


def attribute(index: CatalogIndex, rng: random.Random, n: int) -> list[Draft]:
    """One attribute: a colour, a category level, a small-valued column's value, or a brand."""
    colours = [Draft(rng.choice(("something in {}", "anything {}", "{} items")).format(c),
                     (colour_term(index, c).constraint,)) for (c,) in _keys(index, "color")]
    levels = []
    for (v,) in _keys(index, "cat"):
        if v in GENDERS or v == UNISEX:
            continue
        term, noun = type_term(index, v)
        levels.append(Draft(rng.choice(("{}", "show me {}", "i'm looking for {}")).format(noun), (term.constraint,)))
    attrs = []
    for column, v in _keys(index, "attr"):
        if column in index.small_columns():
            term = attr_term(index, column, v)
            text = f"something {term.after}" if term.after else f"{v} {'wear' if column == 'usage' else column}"
            attrs.append(Draft(text, (term.constraint,)))
    brands = [Draft(f"anything from {b}", (brand_term(index, b).constraint,)) for (b,) in _keys(index, "brand")]
    return pick([colours, levels, attrs, brands], rng, n)


def combined(index: CatalogIndex, rng: random.Random, n: int) -> list[Draft]:
    """Two or three attributes with at least ``MIN_MATCHES`` in-stock products meeting all of them."""
    fam: dict[str, list[Draft]] = {k: [] for k in ("cc", "ccg", "cg", "cca", "ca", "cb")}
    types = set(_types(index, MIN_MATCHES))

    def add(family: str, t: str, terms: list[Term], matches: int) -> None:
        if t in types and matches >= MIN_MATCHES:
            tt, noun = type_term(index, t)
            fam[family].append(Draft(phrase(noun, terms), (tt.constraint, *(x.constraint for x in terms))))

    for t, c in _keys(index, "cat+color"):
        add("cc", t, [colour_term(index, c)], index.count[("cat+color", t, c)])
        for g in GENDERS:
            add("ccg", t, [colour_term(index, c), gender_term(index, g)],
                _gender_count(index, ("cat+color+gender", t, c), g))
    for t, g in _keys(index, "cat+gender"):
        if g in GENDERS:
            add("cg", t, [gender_term(index, g)], _gender_count(index, ("cat+gender", t), g))
    for t, c, column, v in _keys(index, "cat+color+attr"):
        if _usable_attr(index, column, v, plural(index.name("cat", t))):
            add("cca", t, [colour_term(index, c), attr_term(index, column, v)],
                index.count[("cat+color+attr", t, c, column, v)])
    for t, column, v in _keys(index, "cat+attr"):
        if _usable_attr(index, column, v, plural(index.name("cat", t))):
            add("ca", t, [attr_term(index, column, v)], index.count[("cat+attr", t, column, v)])
    for t, b in _keys(index, "cat+brand"):
        add("cb", t, [brand_term(index, b)], index.count[("cat+brand", t, b)])
    return pick(list(fam.values()), rng, n)


def negation(index: CatalogIndex, rng: random.Random, n: int) -> list[Draft]:
    """A type without one of its values (colour, column value, brand): a must-not gold constraint, asked only
    when the value occurs for the type and at least ``MIN_MATCHES`` in-stock products of the type lack it."""
    fam: dict[str, list[Draft]] = {"cat+color": [], "cat+attr": [], "cat+brand": []}
    for kind, family in fam.items():
        for key in _keys(index, kind):
            t = key[0]
            if t not in index.leaves or index.count[("cat", t)] - index.count[(kind, *key)] < MIN_MATCHES:
                continue
            tt, noun = type_term(index, t)
            c = _must_not(index, rng, kind, key[1:], noun)
            if c is not None:
                family.append(Draft(f"{noun} {c.words}", (tt.constraint, c)))
    return pick(list(fam.values()), rng, n)


def _must_not(index: CatalogIndex, rng: random.Random, kind: str, value: tuple[str, ...], noun: str
              ) -> Constraint | None:
    if kind == "cat+attr":
        column, v = value
        if not _usable_attr(index, column, v, noun):
            return None
        words = f"not for {v}" if column == "season" else f"that are not {v}"
        return Constraint(f"{ATTR_PREFIX}{column}", "not_in", (index.name(f"attr:{column}", v),), words=words)
    if kind == "cat+brand":
        return Constraint("brand", "not_in", (index.name("brand", value[0]),), words=f"not from {value[0]}")
    words = rng.choice(("not {}", "but not in {}", "without {}")).format(value[0])
    return Constraint("color", "not_in", (index.name("color", value[0]),), words=words)


AVAILABILITY = ("do you have {}?", "have you got any {}?", "are there any {} in stock?")


def availability(index: CatalogIndex, rng: random.Random, n: int, *, yes: bool) -> list[Draft]:
    """"do you have <colour> <type>?" — in stock (``yes``) or a colour×type nothing in stock has."""
    colours = sorted(c for (c,) in _keys(index, "color"))
    sold_out_only: list[Draft] = []
    others: list[Draft] = []
    for t in sorted(index.leaves):
        tt, noun = type_term(index, t)
        for c in colours:
            in_stock = index.count[("cat+color", t, c)]
            if (in_stock > 0) != yes:
                continue
            term = colour_term(index, c)
            draft = Draft(rng.choice(AVAILABILITY).format(phrase(noun, [term])), (tt.constraint, term.constraint),
                          available=yes)
            (sold_out_only if index.sold_out[("cat+color", t, c)] else others).append(draft)
    # A colour×type that exists only sold out is the interesting "no": it must not be answered "yes".
    return pick([sold_out_only, others], rng, n)


def unanswerable(index: CatalogIndex, rng: random.Random, n: int) -> list[Draft]:
    """Things no product mentions: an odd product type, or a real type in an odd material."""
    nouns = [w for w in ODD_NOUNS if w not in index.odd_words_seen]
    adjectives = [w for w in ODD_ADJECTIVES if w not in index.odd_words_seen]
    colours = [c for (c,) in _keys(index, "color")]
    odd: list[Draft] = []
    for noun in nouns:
        odd.append(Draft(f"do you sell {noun}?", (_text(noun),), answerable=False))
        if adjectives:
            adj = rng.choice(adjectives)
            odd.append(Draft(f"do you have {adj} {noun}?", (_text(adj), _text(noun)), answerable=False))
        if colours:
            odd.append(Draft(f"{rng.choice(colours)} {noun}", (_text(noun),), answerable=False))
    material = [Draft(f"{adj} {type_term(index, t)[1]}", (_text(adj),), answerable=False)
                for t in _types(index) for adj in adjectives]
    return pick([odd, material], rng, n)


def _text(word: str) -> Constraint:
    return Constraint("text", values=(word,), words=word)


def price(index: CatalogIndex, rng: random.Random, n: int) -> list[Draft]:
    """"<type> under <p>" and "<type> between <a> and <b>" with at least ``MIN_MATCHES`` in-stock answers."""
    under: list[Draft] = []
    between: list[Draft] = []
    for t in _types(index, MIN_MATCHES):
        prices = sorted(index.prices.get(t, []))
        if len(prices) < MIN_MATCHES:
            continue
        tt, noun = type_term(index, t)
        high = _nice(prices[len(prices) * 2 // 5], up=True)
        if sum(p <= high for p in prices) >= MIN_MATCHES:
            c = Constraint("price", "range", high=high, words=f"under {high:g}")
            under.append(Draft(f"{noun} under {high:g}", (tt.constraint, c)))
        low, top = _nice(prices[len(prices) // 5], up=False), _nice(prices[len(prices) * 7 // 10], up=True)
        if low < top and sum(low <= p <= top for p in prices) >= MIN_MATCHES:
            c = Constraint("price", "range", low=low, high=top, words=f"between {low:g} and {top:g}")
            between.append(Draft(f"{noun} between {low:g} and {top:g}", (tt.constraint, c)))
    return pick([under, between], rng, n)


def _nice(x: float, *, up: bool) -> float:
    step = 5.0 if x < 100 else 10.0 if x < 1000 else 100.0
    return float((math.ceil if up else math.floor)(x / step) * step)


def photo(index: CatalogIndex, rng: random.Random, n: int) -> list[Draft]:
    """A product's own image, "like this but in <colour>" for another colour its type has in stock."""
    colours: dict[str, list[str]] = {}
    for t, c in _keys(index, "cat+color"):
        colours.setdefault(t, []).append(c)
    drafts = []
    for p in sorted(index.with_image, key=lambda p: p.product_id):
        t = p.category[-1].strip().casefold()
        others = [c for c in colours.get(t, []) if c != p.color.strip().casefold()]
        if not others:
            continue
        c = rng.choice(others)
        text = rng.choice(("like this but in {}", "something like this in {}", "same style but {}")).format(c)
        drafts.append(Draft(text, (type_term(index, t)[0].constraint, colour_term(index, c).constraint),
                            image=p.image))
    return pick([drafts], rng, n)


def title(index: CatalogIndex, rng: random.Random, n: int) -> list[Draft]:
    """A product's own title as typed (lower case); the gold is that exact product."""
    drafts = [Draft(p.title.lower(), target=p.product_id) for p in sorted(index.in_stock_sample,
                                                                        key=lambda p: p.product_id)
              if index.titles[p.title.casefold()] == 1]
    return pick([drafts], rng, n)


Builder = Callable[[CatalogIndex, random.Random, int], list[Draft]]


def builders(index: CatalogIndex) -> list[tuple[str, Builder]]:
    """The kinds this catalog supports, in generation order (price only when it has prices)."""
    out: list[tuple[str, Builder]] = [
        ("attribute", attribute), ("combined", combined), ("negation", negation),
        ("availability_yes", lambda i, r, n: availability(i, r, n, yes=True)),
        ("availability_no", lambda i, r, n: availability(i, r, n, yes=False)),
        ("unanswerable", unanswerable)]
    if index.prices:
        out.append(("price", price))
    return [*out, ("photo", photo), ("title", title)]


def to_questions(kind: str, drafts: Sequence[Draft]) -> list[Question]:
    """Number the drafts of one kind: ``<kind>-0000``, ``<kind>-0001``, …"""
    return [Question(id=f"{kind}-{i:04d}", question=d.text, kind=kind, image=d.image, constraints=d.constraints,
                     answerable=d.answerable, available=d.available, target=d.target)
            for i, d in enumerate(drafts)]
