"""The fast paths of a recommendations body give exactly what their straightforward forms give, bit for bit.

The signal breakdown, a page's evidence (rounded signals, history cosines) and the template's claims are built for
all items at once or from cached parts; the API promises the same JSON for the same data, so each is compared with
its plain per-value form (or, for the template, a digest of the sentences the code gave before these paths) on
seeded data made to hit the edges: half-way values, missing vectors, mixed dtypes, repeated products.
"""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

import numpy as np
import pytest

from recommender.domain import ItemView, RankedItem
from recommender.explain.batch import closeness, history_closeness
from recommender.explain.evidence import (
    Evidence,
    ProductFacts,
    TemplateExplainer,
    build_evidence,
    claims,
    list_evidence,
)
from recommender.ranking.features import FEATURES
from recommender.ranking.ranker import EXPLAINED, SIGNAL_OF, signal_breakdown
from recommender.ranking.rounding import round_floats


def _awkward_values(rng: np.random.Generator, digits: int) -> np.ndarray:
    """Values whose rounding is easy to get wrong: half-way points (± a few ulps), float32s, huge, not finite."""
    halves = (rng.integers(-10**7, 10**7, 20_000) + 0.5) / 10**digits
    return np.concatenate([
        rng.normal(0, 1, 20_000), rng.normal(0, 1, 20_000).astype(np.float32), halves,
        np.nextafter(halves, np.inf), np.nextafter(halves, -np.inf), rng.integers(-10**7, 10**7, 5_000) / 10**digits,
        rng.exponential(1e5, 5_000), rng.normal(0, 10.0**-digits, 5_000),
        [0.0, -0.0, 2.675, 0.125, -4e-6, -5e-6, 1e20, -1e300, 5e-324, np.nan, np.inf, -np.inf]])


@pytest.mark.parametrize("digits", [4, 5, 6])
def test_round_floats_is_pythons_round(digits: int) -> None:
    values = _awkward_values(np.random.default_rng(digits), digits)
    got = round_floats(values, digits)
    assert [repr(v) for v in got] == [repr(round(float(v), digits)) for v in values]


def test_signal_breakdown_is_the_rounded_sums_of_each_signals_features() -> None:
    rng = np.random.default_rng(3)
    rows = rng.normal(0, 1, (40, len(FEATURES))).astype(np.float32)
    rows[0, : len(FEATURES) // 2] = (rng.integers(0, 1000, len(FEATURES) // 2) + 0.5) / 1e5  # half-way values
    contributions = rng.normal(0, 0.1, (40, len(FEATURES)))
    expected = []
    for row, contrib in zip(rows, contributions, strict=True):
        one = {}
        for name in EXPLAINED:
            total = sum(float(c) for f, c in zip(FEATURES, contrib, strict=True) if SIGNAL_OF.get(f, f) == name)
            one[name] = round(float(row[FEATURES.index(name)]), 5)
            one[f"{name}_contribution"] = total
        expected.append(one)
    got = signal_breakdown(rows, contributions)
    assert [list(g) for g in got] == [list(e) for e in expected]  # same keys, same order
    for g, e in zip(got, expected, strict=True):
        assert all(g[k] == e[k] if k in EXPLAINED else abs(g[k] - e[k]) < 2e-5 for k in e)
    plain = np.asarray(contributions) @ np.array([[float(SIGNAL_OF.get(f, f) == n) for n in EXPLAINED]
                                                  for f in FEATURES])
    assert [g[f"{n}_contribution"] for g in got for n in EXPLAINED] == [round(float(v), 5) for v in plain.ravel()]


def _page(seed: int) -> tuple[ItemView | None, list[RankedItem], dict[str, ItemView], list[ItemView]]:
    """A seeded page: anchor, ranked items (some without a view), views, and the shopper's history."""
    r, rng = random.Random(seed), np.random.default_rng(seed)
    dtype = r.choice([np.float32, np.float64])
    cats = [("Women", "Bottoms", "Jeans"), ("Women", "Bottoms", "Skirts"), ("Men", "Shoes"), ()]

    def vectors() -> dict[str, object]:
        out: dict[str, object] = {}
        for name in ("text", "image", "behavior"):
            if r.random() < 0.9:
                v = rng.normal(size=48).astype(dtype)
                out[name] = v / np.linalg.norm(v)
        if r.random() < 0.05:  # an odd one out: another dtype
            out["text"] = rng.normal(size=48).astype(np.float64 if dtype is np.float32 else np.float32) / 7
        return out

    views = {f"P{i}": ItemView(f"P{i}", vectors(), r.choice(cats), r.choice([None, 0.0, r.uniform(5, 90)]),
                               f"G{i % 6}" if r.random() < 0.8 else "", title=f"Item {i} “quoted”\u200b",
                               color=r.choice(["Blue", "blue", "", "red"])) for i in range(30)}
    names = r.sample(EXPLAINED, r.randint(0, len(EXPLAINED)))
    ranked = []
    for i in r.sample(range(35), 12):  # P30.. have no view
        signals: dict[str, Any] = {}  # floats, an int, numpy scalars: what a ranker may hand over
        for n in names:
            signals[n] = r.choice([0.0, -0.0, r.random(), (r.randint(0, 99999) + 0.5) / 1e5, 3, np.float32(r.random())])
            signals[f"{n}_contribution"] = r.choice([0.0, r.uniform(-0.1, 0.2), np.float64(r.uniform(-1, 1))])
        ranked.append(RankedItem(f"P{i}", r.random(), signals, tuple(r.sample(["text", "image", "als_user"], 2))))
    history = [views[f"P{i}"] for i in r.sample(range(30), r.randint(0, 7))]
    return views["P0"] if r.random() < 0.8 else None, ranked, views, history


@pytest.mark.parametrize("seed", range(60))
def test_list_evidence_equals_build_evidence_item_by_item(seed: int) -> None:
    anchor, ranked, views, history = _page(seed)
    co = {r.product_id: {"view": float(len(r.product_id)), "purchase": 1.0} for r in ranked}

    def co_counts(a: str, b: str) -> dict[str, float]:
        return co[b] if seed % 3 else {}

    got = list_evidence(anchor, ranked, views, co_counts, history)
    expected = [build_evidence(anchor, views[r.product_id], r, co_counts(anchor.product_id, r.product_id)
                               if anchor is not None else None, history[:5])
                if r.product_id in views else None for r in ranked]
    assert got == expected
    assert [e.evidence_hash for e in got if e] == [e.evidence_hash for e in expected if e]
    assert [repr(e.signals) for e in got if e] == [repr(e.signals) for e in expected if e]  # -0.0 stays -0.0


def test_history_closeness_is_np_dot_pair_by_pair() -> None:
    rng = np.random.default_rng(5)
    for dtype in (np.float32, np.float64):
        make = [ItemView(f"P{i}", {"text": rng.normal(size=384).astype(dtype),
                                   "image": rng.normal(size=385).astype(dtype)[1:]}) for i in range(30)]
        items, history = make[:20], make[20:]
        got = history_closeness(items, history)
        assert got == [[closeness(h, item) for h in history] for item in items]


def _random_evidence(r: random.Random) -> Evidence:
    """Evidence with every field drawn at random (no vectors: the claims read none)."""
    cats = [("Women", "Bottoms", "Jeans"), ("Women", "Bottoms"), ("Men", "Shoes", "Boots\x07"), ()]
    titles = ["Yellow skinny jeans", "“Best” boots\n\tnow", "A very long title " * 6, "", "Café crème"]

    def facts(i: int) -> ProductFacts:
        return ProductFacts(f"P{i}", r.choice(titles), r.choice(cats), r.choice(["Blue", "blue", "", "Dark  red"]),
                            f"G{i % 3}", r.choice([None, 10.0]))

    names = ["text", "image", "behavior", "cooccurrence", "copurchase", "history_text", "history_image",
             "session", "als_user", "popularity", "same_category", "same_variant", "price_distance"]
    contributions = r.random() < 0.7
    signals: dict[str, float] = {}
    for n in r.sample(names, r.randint(0, len(names))):
        signals[n] = r.choice([0.0, -0.0, 0.3, 0.5, 0.9, -0.2, round(r.random(), 5)])
        if contributions and r.random() < 0.9:
            signals[f"{n}_contribution"] = r.choice([0.0, -0.0, 0.01, -0.03, 0.2, round(r.uniform(-1, 1), 5)])
    item = facts(1)
    return Evidence(
        anchor=facts(0) if r.random() < 0.8 else None, item=item, signals=tuple(sorted(signals.items())),
        sources=("text",), shared_category=item.category[: r.randint(0, 3)], same_color=r.random() < 0.3,
        same_variant=r.random() < 0.3, similar_price=r.random() < 0.4,
        co_purchases=r.choice([None, 0, 2]), co_views=r.choice([None, 0, 5]),
        history=tuple(facts(i) for i in range(2, 2 + r.randint(0, 2))))


# sha256 of the claims and sentences below as the template gave them before its cached/fast paths (commit cc1c0c9)
TEMPLATE_DIGEST = "46b177efd23d5e620ed4b7d20247204914e8a7fe6f01e05a2b59e911c67173ff"


def test_template_claims_and_sentences_are_unchanged() -> None:
    r = random.Random(11)
    out = []
    for _ in range(600):
        ev = _random_evidence(r)
        out.append([[[c.key, c.strength, c.phrase, c.fact, c.short] for c in claims(ev)],
                    TemplateExplainer().sentence(ev), TemplateExplainer(1).sentence(ev)])
    digest = hashlib.sha256(json.dumps(out, ensure_ascii=False).encode("utf-8")).hexdigest()
    assert digest == TEMPLATE_DIGEST, out[:3]


# sha256 of the evidence hashes below as Evidence gave them with its cached properties (commit fb7a635): the
# explanation cache is keyed by them, so a change to Evidence's fields or to ``_plain`` must not move one
EVIDENCE_HASH_DIGEST = "fd99ef6362a9fc4b4cdce9d742d34c26bd442918af4bd917cab5f36ae8357cea"


def test_evidence_hashes_are_unchanged() -> None:
    r = random.Random(13)
    hashes = " ".join(_random_evidence(r).evidence_hash for _ in range(600))
    assert hashlib.sha256(hashes.encode()).hexdigest() == EVIDENCE_HASH_DIGEST
