"""Question → ``Plan``: the ``Planner`` contract and the deterministic ``RulePlanner``.

Decisions worth knowing:

* Words a constraint consumed are left out of ``query_text``: the constraint is pushed down as a filter, so
  repeating "black" in the text would double-count it, a negated word in a text query would pull in exactly
  what was excluded, and a follow-up ("and in white?") would keep a stale "black".
* Vague price words ("cheap", "budget", "pricey") become ``Unmet``: the planner will not invent a threshold.
  "cheaper?" in a follow-up lowers the previous ceiling by 20 %, or goes under the viewed product's price.
* A price question on a catalog without prices becomes ``Unmet("…", "the catalog has no prices")``.
* A negated word that is no catalog value becomes a ``text`` ``not_in`` constraint even if no product uses
  it (then every product meets it, which is true).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

from recommender.ask.intents import REFERENCE, Signals, read_signals
from recommender.ask.model import ATTR_PREFIX, Constraint, Conversation, Plan, Unmet
from recommender.ask.prices import PriceBound, PriceRead, combine, read_prices
from recommender.ask.reading import Reading, Term, keep_word, read_terms
from recommender.ask.text import clean, singular
from recommender.ask.vocabulary import Vocabulary
from recommender.domain import Product

MAX_QUESTION_CHARS = 500
MAX_CONSTRAINTS = 16
CHEAPER_FACTOR = 0.8
NO_PRICES = "the catalog has no prices"


class PlanError(ValueError):
    """The question cannot be planned at all (empty, or longer than ``MAX_QUESTION_CHARS``)."""


class Planner(Protocol):
    """Turns one shopper question into a ``Plan``.

    ``viewed`` is the product on screen (if any), ``has_image`` says a photo came with the question, and
    ``conversation`` is the previous turn's state for follow-ups ("and in white?"). Every constraint value in
    the plan is a canonical catalog spelling; anything asked that cannot be matched or checked is listed in
    ``plan.unmet`` with a plain reason, never silently dropped. Raises ``PlanError`` for an empty question or
    one over 500 characters; any other text (unicode, emoji, control characters) yields a plan.
    """

    def plan(
        self,
        question: str,
        *,
        viewed: Product | None = None,
        has_image: bool = False,
        conversation: Conversation | None = None,
    ) -> Plan:
        """Plan one question."""
        ...


def check_question(question: str) -> str:
    """The question stripped, or ``PlanError`` when it is empty or too long."""
    if not isinstance(question, str):
        raise PlanError("the question must be text")
    text = question.strip()
    if len(text) > MAX_QUESTION_CHARS:
        raise PlanError(f"the question is longer than {MAX_QUESTION_CHARS} characters")
    if not clean(text).strip():
        raise PlanError("the question is empty")
    return text


class RulePlanner:
    """Deterministic planner: catalog phrase matching, price and negation rules, intent cue phrases."""

    def __init__(self, vocabulary: Vocabulary) -> None:
        self.vocabulary = vocabulary

    def plan(
        self,
        question: str,
        *,
        viewed: Product | None = None,
        has_image: bool = False,
        conversation: Conversation | None = None,
    ) -> Plan:
        """Plan one question (see ``Planner``)."""
        text = clean(check_question(question))
        prices = read_prices(text, viewed_price=viewed.price if viewed else None)
        attr_fields = tuple(f for f in self.vocabulary.fields() if f.startswith(ATTR_PREFIX))
        signals = read_signals(prices.rest, attr_fields)
        reading = read_terms(signals.rest, self.vocabulary)
        referent = viewed is not None or has_image
        intent = _intent(signals, reading, prices, viewed, has_image)
        previous = conversation if conversation is not None and _is_follow_up(signals, reading, prices) else None
        unmet: list[Unmet] = []
        constraints = self._constraints(intent, reading, viewed)
        price = self._price(prices, viewed, previous, unmet)
        if price is not None:
            constraints.append(price)
        query = self._query_words(reading, intent, referent, unmet)
        if intent in ("details", "similar", "complement") and not referent and previous is None:
            unmet.append(Unmet("this", "there is no viewed product or photo to refer to"))
        points = REFERENCE.search(text) is not None or intent in ("similar", "complement", "details")
        plan = Plan(
            intent=intent,
            constraints=tuple(constraints[:MAX_CONSTRAINTS]),
            query_text=" ".join(query),
            refers_to_viewed=referent and (points or (intent == "availability" and viewed is not None)),
            asks=signals.asks if intent == "details" else (),
            unmet=tuple(dict.fromkeys(unmet)),
            in_stock_only=not signals.include_sold_out,
        )
        return _follow(plan, previous, signals, self.vocabulary.roots) if previous is not None else plan

    def _constraints(self, intent: str, reading: Reading, viewed: Product | None) -> list[Constraint]:
        # "what goes with these jeans": the jeans are the anchor, not what the shopper wants back
        terms = [t for t in reading.terms if not (intent == "complement" and t.anchored)]
        constraints = with_unisex(_term_constraints(terms, reading), self.vocabulary.roots)
        has_type = any(c.field == "category" and not c.negated for c in constraints)
        if intent == "availability" and viewed is not None and viewed.category and not has_type:
            # "does it come in navy?": the same kind of product as the one on screen, in another colour
            constraints.append(Constraint("category", values=(viewed.category[-1],), words="this"))
        return constraints

    def _price(self, prices: PriceRead, viewed: Product | None, previous: Conversation | None,
               unmet: list[Unmet]) -> Constraint | None:
        if not prices.any:
            return None
        if not self.vocabulary.has_price:
            words = [b.words for b in prices.bounds] + list(prices.relative + prices.vague + prices.unresolved)
            unmet.append(Unmet(", ".join(words), NO_PRICES))
            return None
        unmet += [Unmet(w, f"'{w}' is relative; say a price, e.g. 'under 50'") for w in prices.vague]
        unmet += [Unmet(w, "there is no viewed product to compare prices with") for w in prices.unresolved]
        bounds = list(prices.bounds)
        for word in prices.relative:
            bound = _cheaper(word, viewed, previous)
            if bound is None:
                unmet.append(Unmet(word, "cheaper than what? say a price, e.g. 'under 50'"))
            else:
                bounds.append(bound)
        merged = combine(tuple(bounds))
        if merged is None:
            return None
        if merged.low is not None and merged.high is not None and merged.low > merged.high:
            unmet.append(Unmet(merged.words, "no price is both above the minimum and below the maximum"))
            return None
        return Constraint("price", op="range", low=merged.low, high=merged.high, words=merged.words)

    def _query_words(self, reading: Reading, intent: str, referent: bool, unmet: list[Unmet]) -> list[str]:
        words = [w for w in reading.free if keep_word(w)]
        if intent == "complement" and not referent:
            # no product to anchor on: the anchor's own words are the best description of it
            words = [t.words for t in reading.terms if t.anchored] + words
        kept: list[str] = []
        for word in dict.fromkeys(words):
            if self.vocabulary.mentions(word) or word in {t.words for t in reading.terms}:
                kept.append(word)
            else:
                unmet.append(Unmet(word, f"no product in the catalog mentions '{word}'", absent=True))
        return kept


def _intent(signals: Signals, reading: Reading, prices: PriceRead, viewed: Product | None, has_image: bool) -> str:
    referent = viewed is not None or has_image
    positive = [t for t in reading.terms if not t.negated and not t.anchored]
    asking = bool(signals.asks) and not positive and not reading.free and not prices.bounds
    if signals.complement:
        return "complement"
    if signals.similar or (has_image and not asking):
        return "similar"
    if asking and (referent or signals.reference):
        return "details"
    if signals.availability:
        return "availability"
    pointed = signals.rest.lstrip().startswith("in ") or signals.reference
    if viewed is not None and pointed and positive and not any(t.field == "category" for t in positive):
        return "availability"  # "in blue?", "I want this in blue": the same design in another colour
    return "find"


GENDERED = frozenset({"men", "women"})


def with_unisex(constraints: list[Constraint], roots: frozenset[str]) -> list[Constraint]:
    """"For men"/"for women" also keeps the shop's unisex department, when it has one: unisex sneakers are
    sneakers for women too."""
    unisex = next((r for r in roots if r.casefold() == "unisex"), None)
    if unisex is None:
        return constraints
    out = []
    for c in constraints:
        gendered = c.field == "category" and c.op == "in" and c.values and all(
            v.casefold() in GENDERED and v in roots for v in c.values)
        out.append(replace(c, values=(*c.values, unisex)) if gendered else c)
    return out


def _term_constraints(terms: list[Term], reading: Reading) -> list[Constraint]:
    """Merge terms into constraints: one per field and polarity, except that positive category terms said
    apart ("casual sandals for men") stay separate constraints, since each must hold."""
    merged: dict[tuple[str, bool, int], list[Term]] = {}
    for t in terms:
        group = t.group if (t.field == "category" and not t.negated) else -1
        merged.setdefault((t.field, t.negated, group), []).append(t)
    out = []
    for (fld, negated, _), ts in merged.items():
        values = tuple(dict.fromkeys(v for t in ts for v in t.values))
        words = " or ".join(dict.fromkeys(t.words for t in ts))
        out.append(Constraint(fld, op="not_in" if negated else "in", values=values, words=words))
    if reading.negated_free:
        # the text check is whole-word, so "without hoods" must also exclude "hood"
        free = tuple(dict.fromkeys(form for w in reading.negated_free for form in (w, singular(w))))
        said = " or ".join(dict.fromkeys(reading.negated_free))
        out.append(Constraint("text", op="not_in", values=free, words=said))
    return out


def _cheaper(word: str, viewed: Product | None, previous: Conversation | None) -> PriceBound | None:
    if viewed is not None and viewed.price is not None:
        return PriceBound(None, round(viewed.price - 0.01, 2), word)
    highs = [c.high for c in (previous.constraints if previous else ()) if c.field == "price" and c.high]
    return PriceBound(None, round(min(highs) * CHEAPER_FACTOR, 2), word) if highs else None


def _is_follow_up(signals: Signals, reading: Reading, prices: PriceRead) -> bool:
    if signals.follow_up:
        return True
    has_type = any(t.field == "category" and not t.negated for t in reading.terms)
    return not has_type and not reading.free and bool(reading.terms or prices.any)


def _slot(c: Constraint, roots: frozenset[str]) -> tuple[str, str, bool]:
    return c.field, c.op, c.field == "category" and all(v in roots for v in c.values)


def _follow(plan: Plan, previous: Conversation, signals: Signals, roots: frozenset[str]) -> Plan:
    """A follow-up keeps the previous intent, words and constraints, replacing those on the same field."""
    new_slots = {_slot(c, roots) for c in plan.constraints}
    kept = tuple(c for c in previous.constraints if _slot(c, roots) not in new_slots)
    explicit = signals.complement or signals.similar or signals.availability or plan.intent == "details"
    intent = plan.intent if explicit else previous.intent
    words = " ".join(dict.fromkeys((previous.query_text + " " + plan.query_text).split()))
    return replace(plan, intent=intent, constraints=(kept + plan.constraints)[:MAX_CONSTRAINTS], query_text=words)
