"""Word normalisation shared by the vocabulary and the planner: one place decides that "Tees", "t-shirts" and
"Tshirt" are the same word, so catalog values and question words always meet on the same key."""

from __future__ import annotations

import re
import unicodedata

# Token-level synonyms applied after singularising; the value is the shared key (not a catalog spelling:
# keys only ever resolve to values the catalog itself has).
SYNONYMS: dict[str, str] = {
    "trainer": "sneaker",
    "pant": "trouser",
    "gray": "grey",
    "tee": "tshirt",
    "man": "men",
    "mens": "men",
    "male": "men",
    "gent": "men",
    "guy": "men",
    "woman": "women",
    "womens": "women",
    "lady": "women",
    "ladie": "women",
    "female": "women",
    "kid": "kids",
    "child": "kids",
    "children": "kids",
    "childrens": "kids",
    "colour": "color",
    "jewelry": "jewellery",
}

# Keys with no catalog value of their own that stand for several (a department the catalog splits).
EXPANSIONS: dict[str, tuple[str, ...]] = {
    "kids": ("boy", "girl"),
}

# Words that carry no product meaning for retrieval (question scaffolding, pronouns, fillers).
_STOP_TEXT = """a an the and or nor but of for to in on at by with from into onto about as is are was were be been being
    am do does did done doing have has had having i me my mine we us our you your yours he she him her they them
    their it its this that these those there here what which who whom whose when where why how can could would
    should will shall may might must please show find get give want wanted need needs needed looking look
    searching search something anything some any one ones thing things stuff item items product products
    just really very so too also only more most less than then else other same such like similar
    hi hello hey thanks thank ok okay yes no not sell selling carry got buy shop available availability
    size sizes pair pairs piece pieces kind sort type style styles wear wearing go goes going match matches
    matching tell describe know let see im id ive dont doesnt isnt arent wont cant lot lots maybe either
    new made come comes coming option options choice choices recommend suggest suggestions idea ideas
    well good nice great cool still again now today please pls plz s t"""
STOPWORDS = frozenset(_STOP_TEXT.split())

_DROP_CATEGORIES = frozenset({"So", "Sk"})
_APOSTROPHES = re.compile(r"[’'`´]")
_TOKEN = re.compile(r"[^\W_]+(?:-[^\W_]+)*")


def clean(text: str) -> str:
    """NFKC-normalise, casefold and replace control/format characters and pictographs (emoji) with spaces."""
    text = unicodedata.normalize("NFKC", text)
    # symbols like emoji (So) and modifiers (Sk) go; maths (<, ~) and currency ($, €) carry meaning
    out = [" " if unicodedata.category(ch) in _DROP_CATEGORIES or unicodedata.category(ch)[0] == "C" else ch
           for ch in text]
    return "".join(out).casefold()


def singular(word: str) -> str:
    """A crude English singular, good enough for catalog nouns (dresses→dress, shoes→shoe, tees→tee)."""
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "shes", "ches", "xes", "zes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us")):
        return word[:-1]
    return word


def norm(word: str) -> str:
    """The key of one word: casefolded, apostrophes dropped, singular, synonyms folded together."""
    w = _APOSTROPHES.sub("", word.casefold())
    if w in SYNONYMS:
        return SYNONYMS[w]
    return SYNONYMS.get(singular(w), singular(w))


def words(text: str) -> list[str]:
    """The words of a text as written (casefolded), hyphenated compounds split ("t-shirt" → "t", "shirt")."""
    text = _APOSTROPHES.sub("", clean(text))
    return [part for tok in _TOKEN.findall(text) for part in tok.split("-") if part]


def key(text: str) -> str:
    """The lookup key of a phrase: its normalised words run together ("Navy Blue" → "navyblue",
    "T-shirts" → "tshirt", "Casual Shoes" → "casualshoe"), so spacing and hyphens never matter."""
    return "".join(norm(w) for w in words(text))
