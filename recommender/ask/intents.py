"""The scaffolding of a question: which intent its phrasing signals, which facts a details question asks for,
whether it points at the viewed product or photo, whether sold-out items are welcome, and whether it is a
follow-up. Each reader also blanks what it consumed so those words never reach free-text retrieval."""

from __future__ import annotations

import re
from dataclasses import dataclass

_REF_WORDS = r"(?:this|that|these|those|it|them|the same|this one|that one|mine|the photo|the picture|the image)"
COMPLEMENT = re.compile(
    r"\b(?:(?:to )?go(?:es)? (?:well )?with|match(?:es|ing)?(?: with)?|wear(?:ing)? (?:\w+ )?with|"
    r"pair(?:s|ed)? (?:well )?(?:\w+ )?with|style (?:\w+ )?with|complete (?:the|my) (?:look|outfit)|"
    r"coordinate with|complements?)\b"
)
SIMILAR = re.compile(
    rf"\b(?:(?:something |anything |more )?like {_REF_WORDS}|similar(?: to)?|same style|looks? like|"
    r"alternatives? (?:to|for)|resembl\w+|other versions? of)\b"
)
AVAILABILITY = re.compile(
    r"\b(?:do|did) you (?:have|sell|carry|stock|got)\b|\bhave you got\b|\b(?:is|are) there\b|\bgot any\b|"
    r"^\W*any\b|\b(?:does|do|can|will) (?:it|this|that|these|they|this one|that one) (?:also )?come in\b|"
    r"\bcomes? in\b|\bavailable in\b|\bin stock in\b|\bcan i get (?:it|this|one|them)\b"
)
ASKS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("price", re.compile(r"\bhow much\b|\bwhat(?:'s| is) the price\b|\bprice\b|\bcosts?\b|\bpriced\b")),
    ("in_stock", re.compile(
        r"\bin stock\b|\bsold out\b|\bout of stock\b|\bavailable\b(?! in)|\bcan i (?:buy|order)\b"
    )),
    ("color", re.compile(r"\bwhat colou?r is\b")),
    ("colors", re.compile(
        r"\b(?:what|which|other|more|different|any other) colou?rs?\b|\bcolou?r (?:options|choices|variants)\b"
    )),
    ("brand", re.compile(r"\b(?:what|which) brand\b|\bwho makes\b|\bbrand is\b")),
    ("description", re.compile(
        r"\bmade (?:of|from)\b|\bmaterial\b|\bfabric\b|\btell me (?:more )?about\b|\bdescribe\b|\bdetails?\b|"
        r"\bwhat is (?:it|this|that)\b|\bmore about\b|\binfo(?:rmation)? (?:on|about)\b"
    )),
    ("category", re.compile(r"\bwhat (?:kind|type|sort) of\b")),
)
REFERENCE = re.compile(rf"\b{_REF_WORDS}\b|\bin the (?:photo|picture|image)\b|\bpictured\b")
INCLUDE_SOLD_OUT = re.compile(
    r"\b(?:includ\w*|even(?: if)?|also|with|plus|show(?: me)?|as well as|and)\b[^.?!,;]{0,24}?"
    r"\b(?:sold[- ]?out|out[- ]of[- ]stock|unavailable)(?: (?:ones|items|products|too|as well))?\b|"
    r"\b(?:sold[- ]?out|out[- ]of[- ]stock)(?: ones| items| products)? (?:too|as well|included|also)\b"
)
FOLLOW_UP = re.compile(
    r"^\W*(?:and|but|or|also|what about|how about|what if|and what about|any(?:thing)? in|in|only|instead|"
    r"maybe|then|now|same but|cheaper|more|less)\b"
)


@dataclass(frozen=True)
class Signals:
    """What the phrasing says, independent of the catalog; ``rest`` is the text with scaffolding blanked."""

    complement: bool = False
    similar: bool = False
    availability: bool = False
    asks: tuple[str, ...] = ()
    reference: bool = False
    include_sold_out: bool = False
    follow_up: bool = False
    rest: str = ""


def read_signals(text: str, attr_fields: tuple[str, ...] = ()) -> Signals:
    """Read intent cues from cleaned, casefolded ``text``; ``attr_fields`` are the catalog's ``attr:*`` fields
    (so "what season is it for?" can ask for ``attr:season``)."""
    follow_up = FOLLOW_UP.search(text) is not None
    reference = REFERENCE.search(text) is not None
    include = INCLUDE_SOLD_OUT.search(text) is not None
    text = _blank(text, INCLUDE_SOLD_OUT)
    asks = [name for name, pattern in ASKS if pattern.search(text)]
    for field in attr_fields:
        name = re.escape(field.split(":", 1)[1].replace("_", " "))
        pattern = re.compile(rf"\b(?:what|which) {name}\b")
        if pattern.search(text):
            asks.append(field)
            text = _blank(text, pattern)
    if "color" in asks and "colors" in asks:
        asks.remove("colors")
    flags = {name: pattern.search(text) is not None
             for name, pattern in (("complement", COMPLEMENT), ("similar", SIMILAR), ("availability", AVAILABILITY))}
    for pattern in [COMPLEMENT, SIMILAR, AVAILABILITY, *(p for _, p in ASKS)]:
        text = _blank(text, pattern)
    return Signals(flags["complement"], flags["similar"], flags["availability"], tuple(asks), reference, include,
                   follow_up, text)


def _blank(text: str, pattern: re.Pattern[str]) -> str:
    return pattern.sub(lambda m: " " * len(m.group(0)), text)
