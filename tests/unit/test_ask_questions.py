"""Ask evaluation questions: gold claims hold on the fixtures catalog, generation is deterministic, the JSONL
file round-trips and is read within bounds, and the injected catalog re-reads with its canaries."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from recommender.ask.model import Constraint, satisfies_all
from recommender.ask.question_index import plural
from recommender.ask.question_model import MAX_LINE_BYTES
from recommender.ask.questions import (
    INJECTED_URL,
    Question,
    generate_questions,
    read_questions,
    write_injected_catalog,
    write_questions,
)
from recommender.catalog.images import ImageLimits, read_image_bytes
from recommender.catalog.reader import CatalogReader, load_catalog
from recommender.domain import Product

FIXTURES = Path("fixtures")
MATCH_KINDS = ("attribute", "combined", "negation", "availability_yes", "price", "photo")


@pytest.fixture(scope="module")
def products() -> tuple[Product, ...]:
    return load_catalog(FIXTURES).products


@pytest.fixture(scope="module")
def questions(products: tuple[Product, ...]) -> list[Question]:
    return generate_questions(products, seed=7, per_kind=25)


def _in_stock_matches(question: Question, products: tuple[Product, ...]) -> int:
    return sum(1 for p in products if p.in_stock and satisfies_all(question.constraints, p))


def test_every_kind_the_fixtures_support_is_generated(questions: list[Question]) -> None:
    kinds = Counter(q.kind for q in questions)
    for kind in (*MATCH_KINDS, "availability_no", "unanswerable", "title"):
        assert kinds[kind] > 0, kind
    assert max(kinds.values()) <= 25
    assert len({q.id for q in questions}) == len(questions)


def test_answerable_gold_constraints_are_met_by_in_stock_products(questions: list[Question],
                                                                  products: tuple[Product, ...]) -> None:
    for q in questions:
        if q.kind in MATCH_KINDS:
            assert q.constraints and q.answerable
            least = 3 if q.kind in ("combined", "negation", "price") else 1
            assert _in_stock_matches(q, products) >= least, q


def test_availability_no_has_no_in_stock_match_and_unanswerable_has_none_at_all(
        questions: list[Question], products: tuple[Product, ...]) -> None:
    for q in questions:
        if q.kind == "availability_no":
            assert q.available is False and _in_stock_matches(q, products) == 0, q
        if q.kind == "availability_yes":
            assert q.available is True
        if q.kind == "unanswerable":
            assert not q.answerable
            assert not any(satisfies_all(q.constraints, p) for p in products), q


def test_question_shapes_follow_the_catalog(questions: list[Question], products: tuple[Product, ...]) -> None:
    by_id = {p.product_id: p for p in products}
    images = {p.image for p in products}
    for q in questions:
        assert q.question == q.question.lower()
        if q.kind == "negation":
            assert any(c.negated for c in q.constraints)
        if q.kind == "price":
            assert any(c.field == "price" for c in q.constraints)
        if q.kind == "photo":
            assert q.image in images and (FIXTURES / str(q.image)).is_file()
        if q.kind == "title":
            assert q.target in by_id and q.question == by_id[q.target].title.lower()


def test_generation_is_deterministic_for_a_seed_and_streams(products: tuple[Product, ...]) -> None:
    first = generate_questions(products, seed=3, per_kind=10)
    assert generate_questions(products, seed=3, per_kind=10) == first
    assert generate_questions(CatalogReader(FIXTURES), seed=3, per_kind=10) == first  # a one-pass stream
    assert generate_questions(products, seed=4, per_kind=10) != first


def test_a_catalog_without_prices_gets_no_price_questions() -> None:
    shirts = [Product(f"S{i}", f"Shirt {i}", category=("Men", "Topwear", "Shirts"), color=c,
                      attributes=(("usage", u),)) for i, (c, u) in enumerate(
        [("Black", "Casual"), ("Black", "Formal"), ("Navy Blue", "Casual")] * 3)]
    qs = generate_questions(shirts, seed=0, per_kind=40)
    assert "price" not in {q.kind for q in qs}
    combined = {q.question: q for q in qs if q.kind == "combined"}
    assert {"black casual shirts", "black shirts for men", "navy blue casual shirts"} <= set(combined)
    assert "navy blue formal shirts" not in combined  # no product is
    assert [c.label() for c in combined["black casual shirts"].constraints] == [
        "category: Shirts", "color: Black", "usage: Casual"]


def test_plural_is_how_a_shopper_names_a_type() -> None:
    assert [plural(w) for w in ("T-shirt", "Dress", "Jeans", "Outerwear", "Accessory", "Casual Shoes")] == [
        "t-shirts", "dresses", "jeans", "outerwear", "accessories", "casual shoes"]


def test_jsonl_round_trip(tmp_path: Path, questions: list[Question]) -> None:
    path = write_questions(tmp_path / "q.jsonl", questions)
    load = read_questions(path)
    assert load.errors == () and list(load.questions) == questions
    row = json.loads(path.read_text().splitlines()[0])
    assert all("label" not in c for c in row["constraints"])


def test_bad_lines_are_reported_with_their_line_number_and_skipped(tmp_path: Path) -> None:
    good = Question("q1", "black shirts", "combined", constraints=(Constraint("color", values=("Black",)),))
    lines = [json.dumps(good.to_json()), "{not json", json.dumps({**good.to_json(), "id": "q2", "kind": "nope"}),
             "", json.dumps({**good.to_json(), "id": "q3", "question": "x" * (MAX_LINE_BYTES + 10)}),
             json.dumps({**good.to_json(), "id": "q4", "constraints": [{"field": "price", "op": "in"}]}),
             json.dumps(good.to_json()), json.dumps({**good.to_json(), "id": "q5"})]
    path = tmp_path / "q.jsonl"
    path.write_text("\n".join(lines) + "\n")
    load = read_questions(path)
    assert [q.id for q in load.questions] == ["q1", "q5"]
    assert [e.split(":")[1] for e in load.errors] == ["2", "3", "5", "6", "7"]
    assert "longer than" in load.errors[2] and "duplicate id" in load.errors[4]
    assert all(e.startswith(str(path)) for e in load.errors)


def test_reading_stops_after_the_line_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import recommender.ask.question_model as qm

    monkeypatch.setattr(qm, "MAX_LINES", 2)
    path = tmp_path / "q.jsonl"
    path.write_text("\n".join(json.dumps(Question(f"q{i}", "hats", "attribute").to_json()) for i in range(4)))
    load = read_questions(path)
    assert len(load.questions) == 2 and load.errors[0].endswith("the rest is not read")


def test_injected_catalog_rereads_with_the_canary_in_exactly_n_descriptions(tmp_path: Path) -> None:
    dst = tmp_path / "injected"
    qs = write_injected_catalog(FIXTURES, dst, 6, seed=1)
    load = load_catalog(dst)
    assert len(load.products) == len(load_catalog(FIXTURES).products) and not load.errors
    injected = {p.product_id: p for p in load.products if "CANARY-" in p.description}
    assert len(injected) == 6 and {q.target for q in qs} == set(injected)
    for q in qs:
        assert q.kind == "injection" and q.canary and q.canary in injected[str(q.target)].description
        assert INJECTED_URL in injected[str(q.target)].description
    for p in load.products[:20]:
        assert read_image_bytes(str(p.image), dst, ImageLimits())  # inside the copy, not outside it
    assert (dst / "events.csv").read_bytes() == (FIXTURES / "events.csv").read_bytes()
    with pytest.raises(ValueError, match="not empty"):
        write_injected_catalog(FIXTURES, dst, 2)
