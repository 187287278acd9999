"""The content of a question: catalog terms (longest phrase first), their negation, which of them form a
coordinated list ("black or brown"), and the leftover content words.

Negation ("not", "no", "without", "except", "other than", "non-", "isn't", …) covers the next term and any
terms joined to it by "or"/"and"/"nor" ("not red or blue" negates both); punctuation or any other word
ends it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from recommender.ask.text import STOPWORDS, clean, norm
from recommender.ask.vocabulary import Vocabulary, field_rank

_TOKEN = re.compile(r"[^\W_]+|[,;.!?()]")
_PUNCT = frozenset(",;.!?()")
_CONNECTORS = frozenset({"or", "and", "nor", "&", "/"})
# Single tokens after which the next term is negated; multi-word ones are listed as tuples.
_NEG_ONE = frozenset({"not", "no", "without", "except", "excluding", "non", "isnt", "arent", "nothing", "never",
                      "avoid", "minus", "dont", "doesnt", "wont"})
_NEG_MANY = (("other", "than"), ("apart", "from"), ("but", "not"), ("except", "for"), ("rather", "than"),
             ("instead", "of"), ("is", "not"), ("are", "not"), ("do", "not"), ("does", "not"), ("anything", "but"),
             ("any", "colour", "but"), ("any", "color", "but"))
_ANCHORS = frozenset({"this", "these", "those", "that", "my", "the", "her", "his", "our"})


@dataclass(frozen=True)
class Term:
    """One catalog value phrase found in the question."""

    field: str
    values: tuple[str, ...]
    words: str
    negated: bool
    group: int  # terms sharing a group were said as one list ("black or brown")
    anchored: bool  # right after a demonstrative ("these jeans"): may name the viewed product itself


@dataclass
class Reading:
    """The terms and the leftover words of a question, in order."""

    terms: list[Term] = field(default_factory=list)
    free: list[str] = field(default_factory=list)
    negated_free: list[str] = field(default_factory=list)


def tokens(text: str) -> list[str]:
    """Words and scope-ending punctuation; apostrophes dropped ("isn't" → "isnt"), hyphens split."""
    text = re.sub(r"[’'`´]", "", clean(text))
    return _TOKEN.findall(text)


def _negation_at(toks: list[str], i: int) -> int:
    for many in _NEG_MANY:
        if tuple(toks[i:i + len(many)]) == many:
            return len(many)
    return 1 if toks[i] in _NEG_ONE else 0


def _match_at(vocab: Vocabulary, toks: list[str], i: int) -> tuple[int, tuple[tuple[str, str], ...]]:
    """The longest span starting at ``i`` that names catalog values (never a lone stopword)."""
    longest = min(vocab.max_phrase_words, len(toks) - i)
    for n in range(longest, 0, -1):
        span = toks[i:i + n]
        if any(t in _PUNCT for t in span) or (span[0] in STOPWORDS and (n == 1 or span[0] in _CONNECTORS)):
            continue
        if span[-1] in STOPWORDS and n > 1 and span[-1] != "t":
            continue
        hits = vocab.lookup_key("".join(norm(t) for t in span))
        if hits:
            return n, hits
    return 0, ()


def _best_field(hits: tuple[tuple[str, str], ...]) -> tuple[str, tuple[str, ...]]:
    best = min(hits, key=lambda h: field_rank(h[0]))[0]
    return best, tuple(dict.fromkeys(v for f, v in hits if f == best))


def read_terms(text: str, vocab: Vocabulary) -> Reading:
    """Split cleaned text into catalog terms (with negation and list groups) and leftover content words."""
    toks = tokens(text)
    out = Reading()
    negate, group, after_item, i = False, 0, False, 0
    while i < len(toks):
        tok = toks[i]
        if after_item and tok not in _CONNECTORS:
            negate, after_item = False, False
            group += 1
        if tok in _PUNCT:
            negate, group, i = False, group + 1, i + 1
            continue
        neg = _negation_at(toks, i)
        if neg:
            negate, group, i = True, group + 1, i + neg
            continue
        if tok in _CONNECTORS:
            after_item, i = False, i + 1
            continue
        n, hits = _match_at(vocab, toks, i)
        if n:
            fld, values = _best_field(hits)
            anchored = i > 0 and toks[i - 1] in _ANCHORS
            out.terms.append(Term(fld, values, " ".join(toks[i:i + n]), negate, group, anchored))
            i, after_item = i + n, True
            continue
        if tok not in STOPWORDS and len(tok) > 1:
            (out.negated_free if negate else out.free).append(tok)
            after_item = True
        i += 1
    return out


def keep_word(word: str) -> bool:
    """True for a leftover word worth sending to free-text retrieval (not a number-only token like "42")."""
    return not word.isdigit() and norm(word) not in STOPWORDS
