"""The synthetic shop generator: determinism, format, looks that match the truth, learnable behaviour."""

from __future__ import annotations

import argparse
import csv
import itertools
import re
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jobs import generate_catalog as job
from recommender.synthetic.images import PALETTE, PATTERNS, SHAPES, Look, render_look
from recommender.synthetic.shop import generate_catalog, read_truth
from recommender.synthetic.vocabulary import CATEGORIES, COMPLEMENTS, EVENT_COLUMNS, PRODUCT_COLUMNS

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
SMALL = {"n_products": 60, "n_shoppers": 50, "n_events": 600, "image_size": 64, "progress": False}


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _nearest_palette(rgb: np.ndarray) -> str:
    names = list(PALETTE)
    distances = [float(np.sum((rgb.astype(float) - np.array(PALETTE[n])) ** 2)) for n in names]
    return names[int(np.argmin(distances))]


def _dominant_colour(image: Image.Image) -> np.ndarray:
    """The most frequent non-background pixel colour (background = the corner pixel)."""
    pixels = np.asarray(image.convert("RGB")).reshape(-1, 3)
    foreground = pixels[np.any(pixels != pixels[0], axis=1)]
    colours, counts = np.unique(foreground, axis=0, return_counts=True)
    return colours[int(np.argmax(counts))]


def _sessions(events: list[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    sessions: dict[str, list[dict[str, str]]] = defaultdict(list)
    for event in events:
        sessions[event["session_id"]].append(event)
    return sessions


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("small")
    generate_catalog(out, seed=11, **SMALL)
    return out


@pytest.fixture(scope="module")
def fixture_catalog() -> dict[str, object]:
    return {"products": _rows(FIXTURES / "products.csv"), "events": _rows(FIXTURES / "events.csv"),
            "truth": read_truth(FIXTURES)}


# ------------------------------------------------------------------------------------------ determinism
def test_same_seed_gives_byte_identical_files(small: Path, tmp_path: Path) -> None:
    generate_catalog(tmp_path, seed=11, **SMALL)
    first, second = _files(small), _files(tmp_path)
    assert sorted(first) == sorted(second)
    assert [k for k in first if first[k] != second[k]] == []


def test_different_seed_differs(small: Path, tmp_path: Path) -> None:
    generate_catalog(tmp_path, seed=12, **SMALL)
    for name in ("products.csv", "events.csv", "images/P00001.png"):
        assert (small / name).read_bytes() != (tmp_path / name).read_bytes(), name


def test_worker_processes_do_not_change_the_output(small: Path, tmp_path: Path) -> None:
    generate_catalog(tmp_path, seed=11, workers=2, **SMALL)
    assert _files(tmp_path) == _files(small)


def test_committed_fixtures_are_what_the_generator_makes(tmp_path: Path) -> None:
    summary = generate_catalog(tmp_path, seed=7, progress=False)
    for name in ("products.csv", "events.csv", "truth.csv"):
        assert (tmp_path / name).read_bytes() == (FIXTURES / name).read_bytes(), f"stale fixture: {name}"
    for index in range(1, summary.products + 1, 37):  # pixels, not bytes: zlib builds may differ
        name = f"images/P{index:05d}.png"
        with Image.open(tmp_path / name) as made, Image.open(FIXTURES / name) as committed:
            assert np.array_equal(np.asarray(made), np.asarray(committed)), name


# --------------------------------------------------------------------------------------- counts, format
def test_small_catalog_format(small: Path) -> None:
    products = _rows(small / "products.csv")
    assert len(products) == 60
    assert list(products[0]) == list(PRODUCT_COLUMNS)
    assert "pattern" not in products[0]
    assert [p["product_id"] for p in products] == [f"P{i:05d}" for i in range(1, 61)]
    paths = {c.path for c in CATEGORIES}
    for p in products:
        assert p["title"] and p["category"] in paths and p["color"] in PALETTE and p["brand"]
        assert re.fullmatch(r"\d+\.\d\d", p["price"]) and p["in_stock"] in ("true", "false")
        assert p["image"] == f"images/{p['product_id']}.png"
        with Image.open(small / p["image"]) as image:
            assert image.size == (64, 64)


def test_small_catalog_events(small: Path) -> None:
    ids = {p["product_id"] for p in _rows(small / "products.csv")}
    events = _rows(small / "events.csv")
    assert len(events) >= 600 and list(events[0]) == list(EVENT_COLUMNS)
    assert len({e["user_id"] for e in events}) == 50
    assert all(e["product_id"] in ids and e["event"] in ("view", "cart", "purchase") for e in events)
    stamps = [e["timestamp"] for e in events]
    assert stamps == sorted(stamps)
    assert all(re.fullmatch(r"2024-\d\d-\d\dT\d\d:\d\d:\d\dZ", s) for s in stamps)
    assert stamps[0] >= "2024-01-01" and stamps[-1] < "2024-04-01"
    sessions = _sessions(events)
    assert all(2 <= len(s) <= 10 and len({e["user_id"] for e in s}) == 1 for s in sessions.values())


def test_fixture_counts(fixture_catalog: dict) -> None:
    products, events = fixture_catalog["products"], fixture_catalog["events"]
    assert len(products) >= 300 and len({p["category"] for p in products}) >= 8
    assert len(events) >= 5000 and len({e["user_id"] for e in events}) >= 300
    ids = {p["product_id"] for p in products}
    assert all(e["product_id"] in ids for e in events)
    kinds = Counter(e["event"] for e in events)
    assert kinds["view"] > kinds["cart"] > kinds["purchase"] > 0
    assert 0.03 < sum(p["in_stock"] == "false" for p in products) / len(products) < 0.15
    for p in products:
        with Image.open(FIXTURES / p["image"]) as image:
            assert image.size == (96, 96)


def test_popularity_is_skewed(fixture_catalog: dict) -> None:
    counts = sorted(Counter(e["product_id"] for e in fixture_catalog["events"]).values(), reverse=True)
    assert sum(counts[: len(counts) // 10]) > 0.25 * sum(counts)


def test_variants_share_wording_apart_from_colour(fixture_catalog: dict) -> None:
    groups: dict[str, list[dict[str, str]]] = defaultdict(list)
    for p in fixture_catalog["products"]:
        if p["variant_group"]:
            groups[p["variant_group"]].append(p)
    assert len(groups) >= 10
    for members in groups.values():
        assert 2 <= len(members) <= 4 and len({m["color"] for m in members}) == len(members)
        masked = {(m["title"].lower().replace(m["color"], "#"), m["description"].replace(m["color"], "#"),
                   m["category"], m["brand"], m["price"]) for m in members}
        assert len(masked) == 1


def test_invalid_sizes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        generate_catalog(tmp_path, n_products=0, progress=False)


# ------------------------------------------------------------------------------------------------ looks
@pytest.mark.parametrize("product_type", sorted(SHAPES))
def test_every_look_is_dominated_by_its_colour(product_type: str) -> None:
    rng = np.random.default_rng(0)
    for pattern in PATTERNS:
        for colour in PALETTE:
            second = "navy" if colour in ("white", "yellow", "pink", "beige") else "white"
            image = render_look(Look(product_type, colour, pattern, second), 96, rng)
            assert _nearest_palette(_dominant_colour(image)) == colour, (pattern, colour)


def test_fixture_images_show_their_true_colour(fixture_catalog: dict) -> None:
    for pid, truth in fixture_catalog["truth"].items():
        with Image.open(FIXTURES / "images" / f"{pid}.png") as image:
            assert _nearest_palette(_dominant_colour(image)) == truth.color, pid


def test_no_two_images_are_identical(small: Path) -> None:
    pictures = [np.asarray(Image.open(p)).tobytes() for p in sorted((small / "images").glob("*.png"))]
    assert len(set(pictures)) == len(pictures) == 60


def test_words_do_not_always_name_the_colour(fixture_catalog: dict) -> None:
    truth = fixture_catalog["truth"]
    named = [bool(re.search(rf"\b{truth[p['product_id']].color}\b", f"{p['title']} {p['description']}", re.I))
             for p in fixture_catalog["products"]]
    assert 0.2 <= sum(named) / len(named) <= 0.9


def test_truth_covers_every_product(fixture_catalog: dict) -> None:
    truth, products = fixture_catalog["truth"], fixture_catalog["products"]
    assert sorted(truth) == sorted(p["product_id"] for p in products)
    assert {t.pattern for t in truth.values()} == set(PATTERNS)
    assert all(truth[p["product_id"]].color == p["color"] for p in products)


# -------------------------------------------------------------------------------------------- behaviour
def test_jeans_are_followed_by_their_complement(fixture_catalog: dict) -> None:
    kind = {pid: t.product_type for pid, t in fixture_catalog["truth"].items()}
    after_jeans, overall = Counter(), Counter()
    for session in _sessions(fixture_catalog["events"]).values():
        views = [kind[e["product_id"]] for e in session if e["event"] == "view"]
        for before, after in itertools.pairwise(views):
            overall[after] += 1
            if before == "jeans":
                after_jeans[after] += 1
    target = COMPLEMENTS["jeans"]
    conditional = after_jeans[target] / sum(after_jeans.values())
    base = overall[target] / sum(overall.values())
    assert conditional > 2 * base


def test_cooccurrence_beats_popularity_on_later_sessions(fixture_catalog: dict) -> None:
    sessions = sorted(_sessions(fixture_catalog["events"]).values(), key=lambda s: s[0]["timestamp"])
    items = [list(dict.fromkeys(e["product_id"] for e in s)) for s in sessions]
    cut = int(0.8 * len(items))
    popularity, together = Counter(), defaultdict(Counter)
    for basket in items[:cut]:
        popularity.update(basket)
        for a in basket:
            together[a].update(b for b in basket if b != a)
    by_popularity = [p for p, _ in popularity.most_common()]

    def hit_rate(rank) -> float:
        tests = [b for b in items[cut:] if len(b) > 1]
        return sum(bool(set(rank(b[0])[:10]) & set(b[1:])) for b in tests) / len(tests)

    popular = hit_rate(lambda anchor: [p for p in by_popularity if p != anchor])
    cooc = hit_rate(lambda anchor: [p for p, _ in together[anchor].most_common()]
                    + [p for p in by_popularity if p != anchor and p not in together[anchor]])
    assert cooc > popular + 0.05


# ----------------------------------------------------------------------------------------------- the job
def test_job_parser_defaults_and_run(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    job.add_parser(parser.add_subparsers())
    args = parser.parse_args(["generate-catalog", "--out", str(tmp_path)])
    assert (args.products, args.shoppers, args.events, args.seed, args.image_size) == (360, 320, 6000, 7, 96)
    assert args.func is job.run
    small_sizes = ["--products", "20", "--shoppers", "5", "--events", "50", "--image-size", "32"]
    args = parser.parse_args(["generate-catalog", "--out", str(tmp_path), *small_sizes])
    assert job.run(args) == 0
    assert len(_rows(tmp_path / "products.csv")) == 20
