"""The answer composer: a ``Plan`` and what retrieval found → an ``Answer`` whose every fact comes from the records.

``TemplateComposer`` is deterministic: counts, yes/no verdicts, titles, prices, colours and stock are read from
the retrieved ``Product`` records and the plan's constraint values, never from model text. Catalog text is
untrusted data: titles and values are cleaned (control characters, markup, links dropped, length capped), a title
that reads as an instruction is replaced by the product id, and only description sentences that do not read as
instructions are ever quoted (see ``recommender.ask.wording``). The LLM rephrasing
(``recommender.ask.compose_llm``) falls back to this template.
"""

from __future__ import annotations

from typing import Protocol

from recommender.ask.model import ATTR_PREFIX, Answer, Card, Plan, Retrieved, Sentence, satisfies
from recommender.ask.wording import (
    Described,
    clean_value,
    join_words,
    miss_label,
    product_name,
    safe_description,
    shopper_words,
    unmet_reason,
)
from recommender.domain import Product

CO_SIGNALS = ("cooccurrence", "session")  # served_from substrings meaning "shoppers chose these together"


class Composer(Protocol):
    """Writes the answer to one question from the plan and the retrieved records.

    Contract: ``compose`` returns promptly and never raises for a model failure (an LLM composer falls back to
    the template and records why in ``fallback_reason``). Every sentence cites only ids of products in
    ``retrieved.matches``, ``retrieved.alternatives`` or ``retrieved.viewed``, and every fact it states — yes/no,
    counts, colours, prices, stock, titles — comes from those records or from the plan.
    """

    def compose(self, question: str, plan: Plan, retrieved: Retrieved) -> Answer: ...


def has_co_signal(retrieved: Retrieved) -> bool:
    """True when the products came from co-purchase/co-view/session data (shoppers chose them together)."""
    return any(sig in s.casefold() for s in retrieved.served_from for sig in CO_SIGNALS)


def shown_products(retrieved: Retrieved) -> list[Product]:
    """The products an answer may speak of: matches, alternatives and the viewed product, each once."""
    out: dict[str, Product] = {}
    for p in [c.product for c in (*retrieved.matches, *retrieved.alternatives)]:
        out.setdefault(p.product_id, p)
    if retrieved.viewed is not None:
        out.setdefault(retrieved.viewed.product_id, retrieved.viewed)
    return list(out.values())


def availability_verdict(plan: Plan, retrieved: Retrieved) -> bool | None:
    """The yes/no an answer must not contradict: matches exist (or the viewed product's stock); None if none."""
    if plan.intent != "details":
        return bool(retrieved.matches)
    if plan.asks == ("in_stock",) and retrieved.viewed is not None:
        return retrieved.viewed.in_stock
    return None


class TemplateComposer:
    """Deterministic answers per intent, facts read from the records and the plan (same input → same answer)."""

    identity = "template:v1"

    def __init__(self, currency: str = "", max_listed: int = 5) -> None:
        self.currency = currency
        self.max_listed = max_listed

    def compose(self, question: str, plan: Plan, retrieved: Retrieved) -> Answer:
        """The template answer: the intent's sentences, then one sentence per unmet request."""
        if plan.intent == "details":
            sentences = self._details(plan, retrieved)
        elif not retrieved.matches:
            sentences = self._nothing(plan, retrieved)
        else:
            by_intent = {"find": self._find, "availability": self._availability, "similar": self._similar,
                         "complement": self._complement}
            sentences = by_intent[plan.intent](plan, retrieved)
        sentences += [self._unmet(u.words, u.reason) for u in plan.unmet]
        return Answer(tuple(sentences) or (Sentence("I found nothing to show for that."),), "template")

    # --- helpers ------------------------------------------------------------------------------------------

    def money(self, price: float) -> str:
        """A price as printed: currency symbol (configurable, default none) and two decimals."""
        return f"{self.currency}{price:.2f}"

    def _item(self, p: Product, extra: tuple[str, ...] = ()) -> str:
        facts = ([self.money(p.price)] if p.price is not None else []) + ([] if p.in_stock else ["sold out"])
        notes = "; ".join([", ".join(facts), *extra] if facts else list(extra))  # misses hold commas
        return f"{product_name(p)} ({notes})" if notes else product_name(p)

    def _list(self, cards: tuple[Card, ...]) -> tuple[str, tuple[str, ...]]:
        shown = [c.product for c in cards[: self.max_listed]]
        return join_words([self._item(p) for p in shown]), tuple(p.product_id for p in shown)

    def _stock(self, plan: Plan) -> str:
        return " in stock" if plan.in_stock_only else ""

    def _unmet(self, words: str, reason: str) -> Sentence:
        quoted = shopper_words(words)
        what = f"'{quoted}'" if quoted else "part of your question"
        return Sentence(f"I can't check {what}: {unmet_reason(reason)}.")

    # --- intents ------------------------------------------------------------------------------------------

    def _find(self, plan: Plan, r: Retrieved) -> list[Sentence]:
        described, k, n = Described(plan, self.currency), min(len(r.matches), self.max_listed), r.total_matches
        if n is not None and n >= k:
            head = f"We have {described.counted(n)}{self._stock(plan)}"
            head += f"; here are the top {k}." if n > k else "."
        else:
            head = f"Here {'are' if k > 1 else 'is'} {described.counted(k)}{self._stock(plan)}."
        listed, ids = self._list(r.matches)
        return [Sentence(head), Sentence(f"{'They are' if k > 1 else 'It is'} {listed}.", ids)]

    def _availability(self, plan: Plan, r: Retrieved) -> list[Sentence]:
        described = Described(plan, self.currency)
        listed, ids = self._list(r.matches)
        if (colours := described.only_colours()) and r.viewed is not None and plan.refers_to_viewed:
            said = f"Yes, we have {product_name(r.viewed)} in {colours}{self._stock(plan)}: {listed}."
            out = [Sentence(said, _cite(r.viewed, ids))]
        else:
            out = [Sentence(f"Yes, we have {described.noun_phrase()}{self._stock(plan)}: {listed}.", ids)]
        if r.total_matches is not None and r.total_matches > len(ids):
            out.append(Sentence(f"There are {r.total_matches} in all; these are the top {len(ids)}."))
        return out

    def _similar(self, plan: Plan, r: Retrieved) -> list[Sentence]:
        qual = Described(plan, self.currency).qualifiers()
        listed, ids = self._list(r.matches)
        if r.viewed is not None and (plan.refers_to_viewed or not _from_image(r)):
            head = f"Like {product_name(r.viewed)} but {qual}" if qual else f"Most like {product_name(r.viewed)}"
            return [Sentence(f"{head}: {listed}.", _cite(r.viewed, ids))]
        head = "Closest to your photo" if _from_image(r) else "Closest matches"
        return [Sentence(f"{head}{' ' + qual if qual else ''}: {listed}.", ids)]

    def _complement(self, plan: Plan, r: Retrieved) -> list[Sentence]:
        listed, ids = self._list(r.matches)
        if r.viewed is None:
            return [Sentence(f"Products that may go together: {listed}.", ids)]
        viewed, cited = product_name(r.viewed), _cite(r.viewed, ids)
        if has_co_signal(r):
            return [Sentence(f"With {viewed}, shoppers often chose {listed}.", cited)]
        return [Sentence(f"Products that go with {viewed}: {listed}.", cited)]

    def _nothing(self, plan: Plan, r: Retrieved) -> list[Sentence]:
        out = [self._nothing_head(plan, r)]
        if r.alternatives:
            shown = [c.product for c in r.alternatives[: self.max_listed]]
            items = [self._item(p, self._misses(plan, p)) for p in shown]
            out.append(Sentence(f"The closest we have: {join_words(items)}.", tuple(p.product_id for p in shown)))
        return out

    def _nothing_head(self, plan: Plan, r: Retrieved) -> Sentence:
        """Says plainly that nothing matched (citing the viewed product when it names it)."""
        described = Described(plan, self.currency)
        phrase, stock, colours = described.noun_phrase(), self._stock(plan), described.only_colours()
        viewed = r.viewed
        if plan.intent == "availability" and colours and viewed is not None and plan.refers_to_viewed:
            return Sentence(f"No, we don't have {product_name(viewed)} in {colours}{stock} right now.",
                            (viewed.product_id,))
        if plan.intent == "availability":
            return Sentence(f"No, we don't have {phrase}{stock} right now.")
        if plan.intent == "similar":
            qual = described.qualifiers()
            return Sentence(f"I found nothing close enough{' ' + qual if qual else ''}.")
        if plan.intent == "complement" and viewed is not None:
            return Sentence(f"I found nothing that goes with {product_name(viewed)}.", (viewed.product_id,))
        return Sentence(f"I found no {phrase}{stock}.")

    def _misses(self, plan: Plan, p: Product) -> tuple[str, ...]:
        misses = [miss_label(c, p, self.currency) for c in plan.constraints if not satisfies(c, p)]
        return tuple(m for m in misses if m and m != "sold out")  # _item says "sold out" from the record

    def _details(self, plan: Plan, r: Retrieved) -> list[Sentence]:
        p = r.viewed
        if p is None:
            return [Sentence("I can't tell which product you mean; open it and ask again.")]
        asks = plan.asks or ("summary",)
        names = [product_name(p)] + ["it"] * (len(asks) - 1)  # the product is named once, then "it"
        return [Sentence(_capital(_detail(self, a, p, r, name)), (p.product_id, *_variant_ids(a, p, r)))
                for a, name in zip(asks, names, strict=True)]


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _cite(viewed: Product, ids: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys((viewed.product_id, *ids)))


def _from_image(r: Retrieved) -> bool:
    return any("image" in s.casefold() for s in r.served_from)


def _variants(p: Product, r: Retrieved) -> list[Product]:
    """Other colours of ``p``'s design: matches in its variant group with a different colour, one per colour."""
    seen = {p.color.casefold()}
    out = []
    for c in r.matches:
        q = c.product
        if q.product_id != p.product_id and q.variant_group == p.variant_group and q.color.casefold() not in seen:
            seen.add(q.color.casefold())
            out.append(q)
    return out


def _variant_ids(ask: str, p: Product, r: Retrieved) -> tuple[str, ...]:
    return tuple(q.product_id for q in _variants(p, r)) if ask == "colors" else ()


def _detail(t: TemplateComposer, ask: str, p: Product, r: Retrieved, name: str) -> str:
    """One asked fact about the viewed product (called ``name``), or a plain "the catalog doesn't list …"."""
    color, brand = clean_value(p.color).lower(), clean_value(p.brand)
    if ask == "price":
        return f"{name} costs {t.money(p.price)}." if p.price is not None else \
            f"The catalog doesn't list a price for {name}."
    if ask == "in_stock":
        return f"{name} is in stock." if p.in_stock else f"{name} is sold out right now."
    if ask == "color":
        return f"{name} is {color}." if color else f"The catalog doesn't list a colour for {name}."
    if ask == "colors":
        others = [clean_value(q.color).lower() for q in _variants(p, r) if clean_value(q.color)]
        return f"{name} also comes in {join_words(others)}." if others else \
            f"The catalog lists no other colours of {name}."
    if ask == "brand":
        return f"{name} is by {brand}." if brand else f"The catalog doesn't list a brand for {name}."
    if ask == "category":
        path = clean_value(" / ".join(clean_value(level) for level in p.category), 120)
        return f"{name} is in {path}." if path else f"The catalog doesn't list a category for {name}."
    if ask == "description":
        text = safe_description(p)
        return f"The catalog describes {name} as: \"{text}\"" if text else \
            f"The catalog has no description for {name}."
    if ask == "summary":
        facts = [f"is {color}" if color else "", f"is by {brand}" if brand else "",
                 f"costs {t.money(p.price)}" if p.price is not None else "",
                 "is in stock" if p.in_stock else "is sold out"]
        return f"{name} {join_words([f for f in facts if f])}."
    column = clean_value(ask.removeprefix(ATTR_PREFIX)).replace("_", " ")
    value = clean_value(dict(p.attributes).get(ask.removeprefix(ATTR_PREFIX), ""))
    owner = "its" if name == "it" else f"the {column} of {name}"
    said = f"{owner} {column} is {value}." if name == "it" else f"{owner} is {value}."
    return said if value else f"The catalog doesn't list a {column} for {name}."
