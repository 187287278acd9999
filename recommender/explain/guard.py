"""The guard between an LLM and a shopper: an LLM sentence is shown only if it states nothing beyond its evidence.

Checks, in order (the first failure is the recorded reason): ``empty``; ``too_long`` (characters) or
``too_many_sentences``; ``link_or_markup`` (URLs, e-mails, domains, HTML/Markdown, line breaks);
``injection`` (instruction-like phrases, or words found only in an instruction-like sentence of the untrusted
catalog text); ``ungrounded_number`` (any number, price, percentage or number word the evidence lacks);
``ungrounded_color``; ``ungrounded_product_type``; ``ungrounded_brand`` (a known brand, or a capitalised/
all-caps word the evidence lacks); ``ungrounded_claim`` (bought/viewed together, popular/trending, history,
same style/category, price or promotional claims the signals do not back); ``repetitive``; ``no_fact``
(mentions nothing of the evidence). Fact-words are judged against closed lists; the evidence's own words
(titles, categories, colours, backed claim phrases) are what may be said.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from recommender.explain.evidence import Evidence, ProductFacts, claims


def _vocab(text: str) -> frozenset[str]:
    return frozenset(text.split())


COLOURS = _vocab("""
red blue green yellow orange purple violet pink black white grey gray brown beige navy teal turquoise cyan
magenta maroon burgundy olive khaki tan cream ivory gold golden silver bronze copper charcoal coral salmon
lavender lilac mint mustard peach plum rust sand taupe indigo aqua crimson scarlet emerald jade ochre
off-white multicolour multicolor rose fuchsia camel ecru denim-blue sky-blue
""")

PRODUCT_TYPES = _vocab("""
dress dresses sundress jeans jean trousers trouser pants slacks chinos shorts skirt skirts leggings joggers
shirt shirts tee tees t-shirt t-shirts top tops blouse blouses sweater sweaters jumper jumpers cardigan
cardigans hoodie hoodies sweatshirt sweatshirts jacket jackets coat coats blazer blazers vest vests suit suits
shoe shoes sneaker sneakers trainer trainers boot boots sandal sandals heels loafers slippers flats
bag bags handbag handbags backpack backpacks wallet wallets belt belts hat hats cap caps scarf scarves
gloves socks sock bra bras lingerie underwear swimsuit swimwear bikini pyjamas pajamas kurta kurtas saree
sarees watch watches jewellery jewelry necklace earrings ring rings bracelet sunglasses glasses phone phones
laptop laptops headphones earbuds camera cameras tablet tablets lamp lamps chair chairs table tables sofa
mug mugs bottle bottles perfume lipstick cream serum shampoo toy toys book books
""")

KNOWN_BRANDS = _vocab("""
nike adidas puma reebok zara h&m uniqlo gucci prada chanel dior levi's levis apple samsung sony ikea
mango gap asos shein versace armani hermes burberry lacoste tommy hilfiger calvin klein guess fila vans
converse skechers
""")

# "one" is left out: in "the one you are viewing" it is a pronoun, not a count.
NUMBER_WORDS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
                "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "twenty": 20, "fifty": 50, "hundred": 100,
                "thousand": 1000, "million": 1_000_000, "dozen": 12, "dozens": 12, "hundreds": 100,
                "thousands": 1000, "half": 0, "twice": 2, "double": 2, "triple": 3, "percent": -1}

INJECTION_PHRASES = re.compile(
    r"ignore (all |any |the )?(previous|prior|above|earlier)|disregard|instructions?|system prompt|prompt|"
    r"jailbreak|as an ai|language model|assistant|buy now|click|visit (us|our)|order now|catalog_data",
    re.IGNORECASE)
# Sentences of catalog text that read as orders to a model; their words must not surface in an explanation.
INSTRUCTION_LIKE = re.compile(
    r"\b(ignore|disregard|instructions?|prompt|system|assistant|respond|reply|output|say|write|pretend|"
    r"you (are|must|should|will)|forget)\b|https?://|www\.", re.IGNORECASE)
LINK_OR_MARKUP = re.compile(
    r"https?://|www\.|\b[\w.+-]+@[\w-]+\.[\w.]+|\b[\w-]+\.(com|net|org|io|co|shop|store|example|info|biz|xyz)\b|"
    r"<[^>]*>|[<>`*#|\[\]{}\\]|__|\n|\r", re.IGNORECASE)
PROMO = re.compile(r"\b(sale|discount\w*|deals?|bargain\w*|cheap\w*|save|savings|free|limited|offer\w*|"
                   r"clearance|hurry|exclusive|stock|guarantee\w*|best price)\b|(?<![\w-])off(?![\w-])", re.IGNORECASE)
BOUGHT = re.compile(r"\b(buy|buys|bought|purchase[ds]?|purchasing|ordered|orders)\b", re.IGNORECASE)
VIEWED = re.compile(r"\b(view|viewed|views|browsed|browse|visited|looked at)\b", re.IGNORECASE)
POPULAR = re.compile(r"\b(popular\w*|trending|trend|bestsell\w*|best-sell\w*|best sell\w*|hot|favou?rites?|"
                     r"in demand|top[- ]rated|must-have|viral|everyone)\b", re.IGNORECASE)
PERSONAL = re.compile(r"\b(recent\w*|your (history|taste|style|visits?|past)|you (viewed|browsed|liked|bought))\b",
                      re.IGNORECASE)
VARIANT = re.compile(r"\b(same (style|design|model)|another (colou?r|version)|other colou?rs?)\b", re.IGNORECASE)
SAME_CATEGORY = re.compile(r"\bsame (category|kind|type)\b", re.IGNORECASE)
PRICE_WORDS = re.compile(r"\b(price[ds]?|pricing|cost\w*|cheaper|pricier|affordabl\w*|expensive|budget|value)\b",
                         re.IGNORECASE)
NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
WORD = re.compile(r"[A-Za-z][A-Za-z'&-]*")
SENTENCE_END = re.compile(r"[.!?]+(?=\s|$)")

STOPWORDS = _vocab("""
a an the and or but with of to in on for from by at as is are was be been it its this that these those you your
yours we our they them their he she his her also too very more most so just than then like similar same
""")


@dataclass(frozen=True)
class GuardVerdict:
    """The guard's decision: ``ok``, else the failed check (``reason``) and what tripped it (``detail``)."""

    ok: bool
    reason: str = ""
    detail: str = ""


PASS = GuardVerdict(True)


def _words(text: str) -> list[str]:
    return [w.lower().strip("'-") for w in WORD.findall(text)]


def _stem(word: str) -> str:
    if word.endswith(("sses", "xes", "ches", "shes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def _products(ev: Evidence) -> list[ProductFacts]:
    return [p for p in (ev.anchor, ev.item, *ev.history) if p is not None]


def _numbers(text: str) -> set[float]:
    return {float(n.replace(",", "")) for n in NUMBER.findall(text)}


def numbers_verdict(body: str, allowed: set[float]) -> GuardVerdict:
    """Fails on a percentage, or on any number or number word that ``allowed`` (the evidence's numbers) lacks."""
    if "%" in body:
        return GuardVerdict(False, "ungrounded_number", "%")
    for n in _numbers(body):
        if n not in allowed:
            return GuardVerdict(False, "ungrounded_number", f"{n:g}")
    for w in _words(body):
        if w in NUMBER_WORDS and NUMBER_WORDS[w] not in allowed:
            return GuardVerdict(False, "ungrounded_number", w)
    return PASS


class Guard:
    """Accepts an LLM sentence only when every fact-word in it is backed by the evidence."""

    def __init__(self, max_chars: int = 160, max_sentences: int = 2, catalog_terms: Iterable[str] = (),
                 brands: Iterable[str] = ()) -> None:
        self.max_chars = max_chars
        self.max_sentences = max_sentences
        extra = {_stem(w) for t in catalog_terms for w in _words(t)}
        self.product_types = {_stem(w) for w in PRODUCT_TYPES} | extra
        self.brands = {b.lower() for b in KNOWN_BRANDS} | {b.lower() for b in brands if b.strip()}

    def check(self, text: str, evidence: Evidence) -> GuardVerdict:
        """The verdict on ``text`` as an explanation of ``evidence``."""
        body = text.strip()
        if not body:
            return GuardVerdict(False, "empty")
        if len(body) > self.max_chars:
            return GuardVerdict(False, "too_long", f"{len(body)} > {self.max_chars} chars")
        if len(SENTENCE_END.split(body.rstrip(".!?").strip())) > self.max_sentences:
            return GuardVerdict(False, "too_many_sentences")
        if m := LINK_OR_MARKUP.search(body):
            return GuardVerdict(False, "link_or_markup", m.group(0))
        for check in (self._injection, self._numbers, self._vocabulary, self._claims, self._substance):
            verdict = check(body, evidence)
            if not verdict.ok:
                return verdict
        return PASS

    def _injection(self, body: str, ev: Evidence) -> GuardVerdict:
        if m := INJECTION_PHRASES.search(body):
            return GuardVerdict(False, "injection", m.group(0))
        _, suspicious = _catalog_sentences(ev)
        trusted = _trusted_words(ev)
        echoed = sorted((suspicious - trusted) & set(_words(body)))
        if echoed:
            return GuardVerdict(False, "injection", ", ".join(echoed))
        return PASS

    def _numbers(self, body: str, ev: Evidence) -> GuardVerdict:
        return numbers_verdict(body, _evidence_numbers(ev))

    def _vocabulary(self, body: str, ev: Evidence) -> GuardVerdict:
        trusted = _trusted_words(ev)
        stems = {_stem(w) for w in trusted}
        words = _words(body)
        for w in words:
            if w in COLOURS and w not in trusted:
                return GuardVerdict(False, "ungrounded_color", w)
            if _stem(w) in self.product_types and _stem(w) not in stems:
                return GuardVerdict(False, "ungrounded_product_type", w)
            if w in self.brands and w not in trusted:
                return GuardVerdict(False, "ungrounded_brand", w)
        lowered, said = f" {' '.join(_words(body))} ", _evidence_text(ev)
        for brand in self.brands:
            if " " in brand and f" {brand} " in lowered and f" {brand} " not in said:
                return GuardVerdict(False, "ungrounded_brand", brand)
        for m in WORD.finditer(body):
            raw = m.group(0)
            at_start = re.search(r"(^|[.!?])\W*$", body[: m.start()]) is not None
            name_like = raw[:1].isupper() and not at_start and raw != "I"
            if (name_like or (len(raw) > 2 and raw.isupper())) and raw.lower().strip("'-") not in trusted:
                return GuardVerdict(False, "ungrounded_brand", raw)
        return PASS

    def _claims(self, body: str, ev: Evidence) -> GuardVerdict:
        keys = {c.key for c in claims(ev)}
        rules = ((PROMO, False), (BOUGHT, "copurchase" in keys), (POPULAR, "popularity" in keys),
                 (VIEWED, bool(keys & {"cooccurrence", "session", "history"})),
                 (PERSONAL, bool(keys & {"history", "session", "als_user"})),
                 (VARIANT, "same_variant" in keys), (SAME_CATEGORY, bool(keys & {"image", "same_category"})),
                 (PRICE_WORDS, "price" in keys and not re.search(r"cheaper|pricier|expensive|budget|afford", body,
                                                                re.IGNORECASE)))
        for pattern, backed in rules:
            if (m := pattern.search(body)) and not backed:
                return GuardVerdict(False, "ungrounded_claim", m.group(0))
        return PASS

    def _substance(self, body: str, ev: Evidence) -> GuardVerdict:
        words = [w for w in _words(body) if w not in STOPWORDS]
        if any(words.count(w) > 2 for w in set(words)):
            return GuardVerdict(False, "repetitive")
        specific = {_stem(w) for w in _evidence_words(ev) if w not in STOPWORDS and len(w) > 2}
        if not specific & {_stem(w) for w in words}:
            return GuardVerdict(False, "no_fact")
        return PASS


def _catalog_sentences(ev: Evidence) -> tuple[set[str], set[str]]:
    """Words of the catalog text split in two: plain sentences (titles, categories, colours) and
    instruction-like sentences anywhere, descriptions included (those words are never trusted)."""
    plain: set[str] = set()
    suspicious: set[str] = set()
    for p in _products(ev):
        for field, trusted in ((p.title, True), (p.category_path, True), (p.color, True), (p.description, False)):
            for sentence in re.split(r"(?<=[.!?])\s+|\n", field):
                if INSTRUCTION_LIKE.search(sentence):
                    suspicious |= {w for w in _words(sentence) if w not in STOPWORDS}
                elif trusted:
                    plain |= set(_words(sentence))
    return plain, suspicious


def _evidence_words(ev: Evidence) -> set[str]:
    """Words the evidence itself supplies: plain catalog sentences and the backed claims (titles left out of
    the claim phrases, so an instruction hidden in a title does not become trusted through them)."""
    out, _ = _catalog_sentences(ev)
    for c in claims(ev):
        out |= set(_words(re.sub(r"“[^”]*”", " ", c.phrase))) | set(_words(c.fact))
    return out


def _evidence_text(ev: Evidence) -> str:
    """The evidence's catalog words in order, space-padded, for multi-word names."""
    return " ".join(["", *(" ".join(_words(f"{p.title} {p.category_path} {p.color}")) for p in _products(ev)), ""])


def _trusted_words(ev: Evidence) -> set[str]:
    """The evidence's words plus neutral explanation vocabulary (none of it a fact-word)."""
    return _evidence_words(ev) | GENERIC_WORDS


GENERIC_WORDS = frozenset(_words("look looks looking style styled description described wording material shoppers "
                      "together often similar match matches matching recommended recommend might may interest "
                      "category product item items pick picked goes go pair pairs"))


def _evidence_numbers(ev: Evidence) -> set[float]:
    out: set[float] = set()
    for p in _products(ev):
        out |= _numbers(p.title)
    for price in (p.price for p in _products(ev) if p.price is not None):
        out |= {round(price, 2), float(round(price))}
    for count in (ev.co_purchases, ev.co_views):
        if count:
            out.add(float(count))
    return out
