"""Price expressions in a question ("under 50", "$20-40", "around 30", "cheaper than this") → bounds.

Works on the cleaned, casefolded question text and blanks every expression it reads, so the planner never
sees "50" or "dollars" as content words. A bare amount with a currency ("$50 sneakers") reads as a budget
(at most 50). "around N" is N ± 15 %. Vague words ("cheap", "budget", "pricey") are returned separately: the
planner reports them as unmet rather than inventing a threshold the shopper never said.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

AROUND = 0.15
_CUR = r"(?:[$€£]|usd|eur|gbp|rs\.?|inr)"
_UNIT = r"(?:dollars?|usd|euros?|eur|pounds?|gbp|bucks|quid|rupees?|rs|inr|[$€£])"
_NUM = r"(?:\d{1,3}(?:,\d{3})+|\d{1,9})(?:\.\d{1,2})?"
_AMT = rf"(?:{_CUR}\s*)?{_NUM}(?:\s*{_UNIT}(?![a-z]))?"
_CUR_AMT = rf"(?:{_CUR}\s*{_NUM}(?:\s*{_UNIT}(?![a-z]))?|{_NUM}\s*{_UNIT}(?![a-z]))"
_THIS = r"(?:this(?: one)?|it|that(?: one)?|these|those|them|the one i(?:'| a)?m (?:viewing|looking at))"

_RANGE = [
    re.compile(rf"\bbetween\s+(?P<a>{_AMT})\s+(?:and|to|&)\s+(?P<b>{_AMT})"),
    re.compile(rf"\bfrom\s+(?P<a>{_AMT})\s+(?:to|till|until|-)\s+(?P<b>{_AMT})"),
    re.compile(rf"(?<![\w.])(?P<a>{_AMT})\s*(?:-|–|—|to)\s*(?P<b>{_AMT})(?![\w.])"),
]
_HIGH = re.compile(
    rf"(?:(?<!not )(?<!no )\b(?:under|below|beneath|less than|cheaper than|lower than|at most|max(?:imum)?|up to|upto|"
    rf"no more than|not more than|not over|not above|within|within a budget of|budget of|for less than)"
    rf"|<=?|≤)\s*(?P<a>{_AMT})"
)
_LOW = re.compile(
    rf"(?:\b(?:over|above|more than|at least|min(?:imum)?|starting (?:at|from)|from|"
    rf"no less than|not less than|not under|not below|pricier than|more expensive than)|>=?|≥)\s*(?P<a>{_AMT})"
)
_NEAR = re.compile(rf"(?:\b(?:around|about|approximately|approx\.?|roughly|close to|near|circa)|~)\s*(?P<a>{_AMT})")
_BARE = re.compile(rf"(?<![\w.]){_CUR_AMT}(?![\w.])")
_BELOW_VIEWED = re.compile(rf"\b(?:cheaper|less expensive|lower priced|lower in price|more affordable) than {_THIS}\b")
_ABOVE_VIEWED = re.compile(rf"\b(?:more expensive|pricier|dearer) than {_THIS}\b")
_RELATIVE = re.compile(r"\b(?:cheaper|less expensive|lower priced|more affordable|for less)\b")
_VAGUE = re.compile(
    r"\b(?:cheap|cheapest|budget|affordable|inexpensive|low[- ]cost|bargain|pricey|expensive|premium|luxury|"
    r"high[- ]end|under budget|on a budget)\b"
)


@dataclass(frozen=True)
class PriceBound:
    """One price expression read as inclusive bounds (either may be None) and the words it came from."""

    low: float | None
    high: float | None
    words: str


@dataclass(frozen=True)
class PriceRead:
    """Everything price-like in a question; ``rest`` is the text with those expressions blanked out."""

    bounds: tuple[PriceBound, ...] = ()
    relative: tuple[str, ...] = ()  # "cheaper" with nothing to compare to in the question itself
    vague: tuple[str, ...] = ()  # "cheap", "budget" …
    unresolved: tuple[str, ...] = ()  # "cheaper than this" with no viewed price
    rest: str = ""

    @property
    def any(self) -> bool:
        """True when the question said anything about price."""
        return bool(self.bounds or self.relative or self.vague or self.unresolved)


def amount(text: str) -> float:
    """The number in an amount expression ("$1,250.50" → 1250.5)."""
    match = re.search(_NUM, text)
    if match is None:
        raise ValueError(f"no amount in {text!r}")
    return float(match.group(0).replace(",", ""))


def read_prices(text: str, *, viewed_price: float | None = None) -> PriceRead:
    """Find and blank every price expression in cleaned, casefolded ``text``."""
    bounds: list[PriceBound] = []
    unresolved: list[str] = []
    for pattern, below in ((_BELOW_VIEWED, True), (_ABOVE_VIEWED, False)):
        for m in list(pattern.finditer(text)):
            if viewed_price is None:
                unresolved.append(m.group(0))
            else:
                # strictly cheaper / dearer than the viewed product, to the cent
                edge = round(viewed_price - 0.01, 2) if below else round(viewed_price + 0.01, 2)
                bounds.append(PriceBound(None, edge, m.group(0)) if below else PriceBound(edge, None, m.group(0)))
        text = _blank(text, pattern)
    for pattern in _RANGE:
        for m in list(pattern.finditer(text)):
            a, b = sorted((amount(m.group("a")), amount(m.group("b"))))
            bounds.append(PriceBound(a, b, m.group(0).strip()))
        text = _blank(text, pattern)
    text, found = _read_one_sided(text)
    bounds += found
    relative = [m.group(0) for m in _RELATIVE.finditer(text)]
    text = _blank(text, _RELATIVE)
    vague = [m.group(0) for m in _VAGUE.finditer(text)]
    text = _blank(text, _VAGUE)
    return PriceRead(tuple(bounds), tuple(relative), tuple(vague), tuple(unresolved), text)


def _read_one_sided(text: str) -> tuple[str, list[PriceBound]]:
    bounds: list[PriceBound] = []
    for m in _HIGH.finditer(text):
        bounds.append(PriceBound(None, amount(m.group("a")), m.group(0).strip()))
    text = _blank(text, _HIGH)
    for m in _LOW.finditer(text):
        bounds.append(PriceBound(amount(m.group("a")), None, m.group(0).strip()))
    text = _blank(text, _LOW)
    for m in _NEAR.finditer(text):
        n = amount(m.group("a"))
        bounds.append(PriceBound(round(n * (1 - AROUND), 2), round(n * (1 + AROUND), 2), m.group(0).strip()))
    text = _blank(text, _NEAR)
    for m in _BARE.finditer(text):
        bounds.append(PriceBound(None, amount(m.group(0)), m.group(0).strip()))
    return _blank(text, _BARE), bounds


def combine(bounds: tuple[PriceBound, ...]) -> PriceBound | None:
    """All bounds at once ("over 20 and under 50" → 20–50); None when there are none."""
    if not bounds:
        return None
    lows = [b.low for b in bounds if b.low is not None]
    highs = [b.high for b in bounds if b.high is not None]
    words = ", ".join(b.words for b in bounds)
    return PriceBound(max(lows) if lows else None, min(highs) if highs else None, words)


def _blank(text: str, pattern: re.Pattern[str]) -> str:
    return pattern.sub(lambda m: " " * len(m.group(0)), text)
