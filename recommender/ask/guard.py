"""The answer guard: an LLM's rephrased answer is shown only if each sentence states nothing beyond the evidence.

It extends ``recommender.explain.guard`` (its closed lists of colours, product types, brands and number words,
and its injection, link and claim patterns) from one explanation sentence to an answer of cited sentences.
Checks per sentence, first failure wins: ``empty``; ``too_long``/``too_many_sentences``; ``link_or_markup``;
``injection`` (instruction phrases, or words found only in instruction-like catalog sentences);
``unknown_citation`` (an id not among the shown products); ``uncited_product`` (names a product, cites none of
those it names); ``ungrounded_number`` (not a cited product's price/title number, a count, a plan bound or a
number of an uncited template sentence); ``ungrounded_color``/``ungrounded_product_type``/``ungrounded_brand``
(not in the cited records or the plan); ``ungrounded_claim`` (promotion, popularity, history; bought/viewed
together without co-occurrence data); ``contradiction`` (a yes/no or stock claim against the records);
``repetitive``; ``no_fact``. Per answer: ``too_many_sentences`` and ``incomplete`` (a product the template cites
or an unmet request it names is left out).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from recommender.ask.compose import availability_verdict, has_co_signal, shown_products
from recommender.ask.model import Answer, Plan, Retrieved, Sentence
from recommender.ask.wording import clean_value, product_name, safe_description, shopper_words
from recommender.domain import Product

# The private helpers are the explanation guard's own tokeniser/stemmer: shared so both guards read words alike.
from recommender.explain.guard import (
    BOUGHT,
    COLOURS,
    GENERIC_WORDS,
    INJECTION_PHRASES,
    INSTRUCTION_LIKE,
    LINK_OR_MARKUP,
    PASS,
    PERSONAL,
    POPULAR,
    PROMO,
    SENTENCE_END,
    STOPWORDS,
    VIEWED,
    WORD,
    Guard,
    GuardVerdict,
    _numbers,
    _stem,
    _words,
    numbers_verdict,
)

ANSWER_WORDS = frozenset(_words("yes no we have here are is top closest catalog list lists listed doesn't don't "
                                "price prices costs colour colours color colors comes come also sold out stock "
                                "right now match matches matching found nothing check can't mentions photo shoppers "
                                "chose choose described describes description brand category in all these there "
                                "it its which one ones available option options picks great nice product products"))
YES = re.compile(r"^\W*(yes|yep|yeah|sure)\b|\bwe do have\b", re.IGNORECASE)
NO = re.compile(r"^\W*no\b|\b(don't|do not|doesn't|does not|don’t|cannot find|can't find)\b|\bnone\b|\bnothing\b",
                re.IGNORECASE)
SOLD_OUT = re.compile(r"\b(sold out|out of stock|unavailable|not available|not in stock)\b", re.IGNORECASE)
IN_STOCK = re.compile(r"\bin stock\b", re.IGNORECASE)


def _record_words(p: Product) -> tuple[set[str], set[str]]:
    """A record's words split in two: plain fields and sentences, and words of instruction-like sentences."""
    fields = [product_name(p), p.brand, p.color, *p.category, safe_description(p),
              *(f"{k.replace('_', ' ')} {v}" for k, v in p.attributes)]
    plain = set(_words(" ".join(clean_value(f, 300) for f in fields)))
    suspicious: set[str] = set()
    for text in (p.title, p.description):
        for sentence in re.split(r"(?<=[.!?])\s+|\n", text):
            if INSTRUCTION_LIKE.search(sentence) or INJECTION_PHRASES.search(sentence):
                suspicious |= {w for w in _words(sentence) if w not in STOPWORDS}
    return plain, suspicious


def _price_numbers(p: Product) -> set[float]:
    out = _numbers(product_name(p))
    if p.price is not None:
        out |= {round(p.price, 2), float(round(p.price))}
    return out


@dataclass(frozen=True)
class AnswerEvidence:
    """What an answer may say: the shown records, the plan, the template answer and the counts behind it."""

    plan: Plan
    products: tuple[Product, ...]
    template: Answer
    counts: frozenset[float]
    verdict: bool | None
    co_signal: bool

    @classmethod
    def of(cls, plan: Plan, retrieved: Retrieved, template: Answer) -> AnswerEvidence:
        """The evidence of one composed answer."""
        counts = {float(len(retrieved.matches)), float(len(retrieved.alternatives))}
        if retrieved.total_matches is not None:
            counts.add(float(retrieved.total_matches))
        for s in template.sentences:
            if not s.product_ids:  # count and unmet sentences: their numbers are counts or plan words
                counts |= _numbers(s.text)
        for c in plan.constraints:
            counts |= {float(b) for b in (c.low, c.high) if b is not None}
        return cls(plan, tuple(shown_products(retrieved)), template, frozenset(counts),
                   availability_verdict(plan, retrieved), has_co_signal(retrieved))

    def product(self, product_id: str) -> Product | None:
        """The shown product with this id, if any."""
        return next((p for p in self.products if p.product_id == product_id), None)

    def plan_words(self) -> set[str]:
        """The plan's own words (constraint values, sanitised unmet words) and those of the template's uncited
        sentences (counts, verdicts, unmet requests: said from the plan and the counts, about no one record)."""
        values = [v for c in self.plan.constraints for v in c.values]
        values += [shopper_words(u.words) for u in self.plan.unmet]
        values += [s.text for s in self.template.sentences if not s.product_ids]
        return set(_words(" ".join(values)))


class AnswerGuard:
    """Accepts an answer only when every sentence is grounded in the shown records, the plan and the template."""

    def __init__(self, max_chars: int = 400, max_sentences: int = 10, catalog_terms: Iterable[str] = (),
                 brands: Iterable[str] = ()) -> None:
        self.max_chars = max_chars
        self.max_sentences = max_sentences
        self._lists = Guard(max_chars=max_chars, catalog_terms=catalog_terms, brands=brands)

    def check_answer(self, sentences: Sequence[Sentence], ev: AnswerEvidence) -> GuardVerdict:
        """The verdict on a whole answer: its size, each sentence, and that it keeps the template's content."""
        if not sentences:
            return GuardVerdict(False, "empty")
        if len(sentences) > self.max_sentences:
            return GuardVerdict(False, "too_many_sentences", str(len(sentences)))
        for s in sentences:
            verdict = self.check(s, ev)
            if not verdict.ok:
                return verdict
        cited = {i for s in sentences for i in s.product_ids}
        missing = sorted({i for s in ev.template.sentences for i in s.product_ids} - cited)
        if missing:
            return GuardVerdict(False, "incomplete", ", ".join(missing))
        said = " ".join(_words(" ".join(s.text for s in sentences)))
        for u in ev.plan.unmet:
            words = " ".join(_words(shopper_words(u.words)))
            if words and words not in said:
                return GuardVerdict(False, "incomplete", words)
        return PASS

    def check(self, sentence: Sentence, ev: AnswerEvidence) -> GuardVerdict:
        """The verdict on one sentence (its text without the citation brackets) against the evidence."""
        body = sentence.text.strip()
        if not body:
            return GuardVerdict(False, "empty")
        if len(body) > self.max_chars:
            return GuardVerdict(False, "too_long", f"{len(body)} > {self.max_chars} chars")
        if len(SENTENCE_END.split(body.rstrip(".!?").strip())) > 2:
            return GuardVerdict(False, "too_many_sentences")
        if m := LINK_OR_MARKUP.search(body):
            return GuardVerdict(False, "link_or_markup", m.group(0))
        unknown = [i for i in sentence.product_ids if ev.product(i) is None]
        if unknown:
            return GuardVerdict(False, "unknown_citation", ", ".join(unknown))
        cited = [p for i in sentence.product_ids if (p := ev.product(i)) is not None]
        for check in (self._injection, self._naming, self._numbers, self._vocabulary, self._claims,
                      self._verdict, self._substance):
            verdict = check(body, cited, ev)
            if not verdict.ok:
                return verdict
        return PASS

    def _injection(self, body: str, cited: list[Product], ev: AnswerEvidence) -> GuardVerdict:
        if m := INJECTION_PHRASES.search(body):
            return GuardVerdict(False, "injection", m.group(0))
        plain, suspicious = set(GENERIC_WORDS | ANSWER_WORDS) | ev.plan_words(), set[str]()
        plain |= set(_words(ev.template.text))
        for p in ev.products:
            words, bad = _record_words(p)
            plain, suspicious = plain | words, suspicious | bad
        echoed = sorted((suspicious - plain) & set(_words(body)))
        return GuardVerdict(False, "injection", ", ".join(echoed)) if echoed else PASS

    def _naming(self, body: str, cited: list[Product], ev: AnswerEvidence) -> GuardVerdict:
        said = set(_words(body))
        types = self._lists.product_types | {_stem(w) for p in ev.products for w in _words(" ".join(p.category))}
        named = [p for p in ev.products if _names(said, p, types)]
        if named and not any(p in cited for p in named):
            return GuardVerdict(False, "uncited_product", named[0].product_id)
        return PASS

    def _numbers(self, body: str, cited: list[Product], ev: AnswerEvidence) -> GuardVerdict:
        allowed = set(ev.counts)
        for p in cited:
            allowed |= _price_numbers(p)
        return numbers_verdict(body, allowed)

    def _vocabulary(self, body: str, cited: list[Product], ev: AnswerEvidence) -> GuardVerdict:
        trusted = ev.plan_words() | {w for p in cited for w in _record_words(p)[0]}
        stems = {_stem(w) for w in trusted}
        types = self._lists.product_types | {_stem(w) for p in ev.products for w in _words(" ".join(p.category))}
        for w in _words(body):
            if w in COLOURS and w not in trusted:
                return GuardVerdict(False, "ungrounded_color", w)
            if _stem(w) in types and _stem(w) not in stems:
                return GuardVerdict(False, "ungrounded_product_type", w)
            if w in self._lists.brands and w not in trusted:
                return GuardVerdict(False, "ungrounded_brand", w)
        known = trusted | ANSWER_WORDS | GENERIC_WORDS | set(_words(ev.template.text))
        for m in WORD.finditer(body):
            raw = m.group(0)
            at_start = re.search(r"(^|[.!?:;])\W*$", body[: m.start()]) is not None
            name_like = raw[:1].isupper() and not at_start and raw != "I"
            if (name_like or (len(raw) > 2 and raw.isupper())) and raw.lower().strip("'-") not in known:
                return GuardVerdict(False, "ungrounded_brand", raw)
        return PASS

    def _claims(self, body: str, cited: list[Product], ev: AnswerEvidence) -> GuardVerdict:
        # a claim word that is part of a cited record ("Hot Water Bottle", "Sugar-free Mints") names, not claims
        named = {w for p in cited for w in _record_words(p)[0]} | {"stock"}
        rules = ((PROMO, False), (POPULAR, False), (PERSONAL, False), (BOUGHT, ev.co_signal), (VIEWED, ev.co_signal))
        for pattern, backed in rules:
            for m in pattern.finditer(body):
                if not backed and not set(_words(m.group(0))) <= named:
                    return GuardVerdict(False, "ungrounded_claim", m.group(0))
        return PASS

    def _verdict(self, body: str, cited: list[Product], ev: AnswerEvidence) -> GuardVerdict:
        if ev.verdict is True and (m := NO.search(body)):
            return GuardVerdict(False, "contradiction", m.group(0))
        if ev.verdict is False and (m := YES.search(body)):
            return GuardVerdict(False, "contradiction", m.group(0))
        if (m := SOLD_OUT.search(body)) and not any(not p.in_stock for p in cited) and ev.verdict is not False:
            return GuardVerdict(False, "contradiction", m.group(0))
        if (m := IN_STOCK.search(body)) and cited and all(not p.in_stock for p in cited):
            return GuardVerdict(False, "contradiction", m.group(0))
        return PASS

    def _substance(self, body: str, cited: list[Product], ev: AnswerEvidence) -> GuardVerdict:
        words = [w for w in _words(body) if w not in STOPWORDS]
        titles = {w for p in cited for w in _words(product_name(p))}
        if any(words.count(w) > 3 and w not in titles for w in set(words)):
            return GuardVerdict(False, "repetitive")
        if cited or _numbers(body):
            return PASS
        facts = ev.plan_words() | set(_words(ev.template.text)) | {w for p in ev.products for w in _record_words(p)[0]}
        specific = {_stem(w) for w in facts - STOPWORDS - GENERIC_WORDS - ANSWER_WORDS if len(w) > 2}
        return PASS if specific & {_stem(w) for w in words} else GuardVerdict(False, "no_fact")


def _names(said: set[str], p: Product, types: set[str]) -> bool:
    """True when the sentence names ``p``: most of its title's distinctive words (not colours or types) occur."""
    plain = STOPWORDS | COLOURS | GENERIC_WORDS | ANSWER_WORDS
    words = {w for w in _words(product_name(p)) if w not in plain and _stem(w) not in types and len(w) > 2}
    return bool(words) and len(words & said) >= min(2, len(words))
