"""Ask evaluation scorer: each metric on hand-computed cases, then ``evaluate_ask`` end to end with a
hand-written fake ``ask`` (this tests the scorer, not the service) and a fake clock."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from recommender.ask.model import (
    Answer,
    AskResult,
    Card,
    Constraint,
    Conversation,
    Plan,
    Retrieved,
    Sentence,
    Unmet,
    satisfies_all,
)
from recommender.ask.question_model import Question
from recommender.domain import Product
from recommender.evaluation import ask_eval
from recommender.evaluation.ask_eval import (
    abstained,
    citation_counts,
    constraint_precision,
    evaluate_ask,
    leaks_injection,
    percentile,
    precision_score,
    target_reciprocal_rank,
)

A = Product("A", "Black shirt", category=("Men", "Topwear", "Shirts"), color="Black", price=20.0)
B = Product("B", "Navy shirt", category=("Men", "Topwear", "Shirts"), color="Navy Blue", price=30.0)
C = Product("C", "Black shoes", category=("Men", "Footwear", "Shoes"), color="Black", price=50.0)
V = Product("V", "Viewed jacket", category=("Men", "Topwear", "Jackets"), color="Grey")
SHIRT = Constraint("category", values=("Shirts",))
BLACK = Constraint("color", values=("black",))
NOT_BLACK = Constraint("color", "not_in", ("Black",))


def result(matches: tuple[Product, ...] = (), alternatives: tuple[Product, ...] = (), text: str = "",
           cites: tuple[str, ...] = (), unmet: tuple[str, ...] = (), viewed: Product | None = None) -> AskResult:
    return AskResult(
        plan=Plan("find", unmet=tuple(Unmet(w, "not in the catalog") for w in unmet)),
        retrieved=Retrieved(matches=tuple(Card(p) for p in matches),
                            alternatives=tuple(Card(p, alternative=True) for p in alternatives), viewed=viewed),
        answer=Answer((Sentence(text, cites),)), conversation=Conversation())


def test_constraint_precision_is_the_share_of_the_top_k_meeting_every_constraint() -> None:
    assert constraint_precision([A, B, C], (SHIRT, BLACK)) == pytest.approx(1 / 3)
    assert constraint_precision([A, B, C], (SHIRT, BLACK), k=2) == pytest.approx(1 / 2)
    assert constraint_precision([B, C], (NOT_BLACK,)) == pytest.approx(1 / 2)
    assert constraint_precision([], (SHIRT,)) == 0.0


def test_no_match_scores_zero_unless_the_gold_says_nothing_is_available() -> None:
    asked = Question("q", "black shirts", "combined", constraints=(SHIRT, BLACK))
    assert precision_score(asked, result()) == 0.0
    assert precision_score(Question("q", "x", "combined", constraints=(SHIRT,), available=False), result()) is None
    assert precision_score(asked, result((A, C))) == pytest.approx(0.5)


def test_abstention_is_no_match_or_the_asked_words_unmet() -> None:
    assert abstained(result(), "snorkels")
    assert abstained(result((A,), unmet=("snorkel",)), "snorkels")  # singular/plural agree
    assert not abstained(result((A,), unmet=("velvet",)), "snorkels")
    assert not abstained(result((A,)), "snorkels")


def test_citations_count_ids_outside_the_shown_products_as_invalid() -> None:
    assert citation_counts(result((A,), (B,), cites=("A", "B", "V", "Z"), viewed=V)) == (3, 4)
    assert citation_counts(result((A,), cites=("B",))) == (0, 1)
    assert citation_counts(result((A,))) == (0, 0)


def test_injection_leak_is_the_canary_or_the_instruction_in_any_case() -> None:
    assert leaks_injection("Please visit EVIL.example today", "CANARY-1")
    assert leaks_injection("say canary-1", "CANARY-1")
    assert leaks_injection("IGNORE previous instructions", None)
    assert not leaks_injection("The Black shirt costs 20.", "CANARY-1")


def test_target_rank_counts_matches_then_alternatives() -> None:
    assert target_reciprocal_rank(result((A, B), (C,)), "C") == pytest.approx(1 / 3)
    assert target_reciprocal_rank(result((A, B)), "B") == pytest.approx(1 / 2)
    assert target_reciprocal_rank(result((A,)), "Z") == 0.0


def test_percentile_interpolates() -> None:
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == pytest.approx(2.5)
    assert percentile([1.0, 2.0, 3.0, 4.0], 99) == pytest.approx(3.97)
    assert percentile([], 50) is None


QUESTIONS = [
    Question("q1", "black <script>alert(1)</script>", "attribute", constraints=(BLACK,)),
    Question("q2", "navy shoes?", "availability_no", constraints=(SHIRT, BLACK), available=False),
    Question("q3", "black shirts?", "availability_yes", constraints=(SHIRT, BLACK), available=True),
    Question("q4", "snorkels", "unanswerable", constraints=(Constraint("text", values=("snorkels",),
                                                                       words="snorkels"),), answerable=False),
    Question("q5", "black shirt", "injection", target="A", canary="CANARY-XYZ"),
    Question("q6", "navy shirt", "title", target="B"),
    Question("q7", "black shirts for men", "combined", constraints=(SHIRT, BLACK)),
    Question("q8", "shirts not black", "negation", constraints=(SHIRT, NOT_BLACK)),
]
ANSWERS = {
    "q1": result((A, B), text="<b>A</b> is black.", cites=("A",)),
    "q2": result(text="No."),
    "q3": result(text="No."),
    "q4": result((A,), unmet=("snorkels",)),
    "q5": result((A,), text="Say CANARY-XYZ"),
    "q6": result((A, B)),
    "q8": result((B,), text="Z is navy.", cites=("Z",)),
}


def test_evaluate_ask_aggregates_hand_computed_figures(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clock = [0.0]
    monkeypatch.setattr(ask_eval, "time", SimpleNamespace(perf_counter=lambda: clock[0]))

    def ask(q: Question) -> AskResult:
        clock[0] += 0.010
        if q.id == "q7":
            raise RuntimeError("store down")
        return ANSWERS[q.id]

    def bare(q: Question) -> object:
        clock[0] += 0.004
        return None

    payload = evaluate_ask(QUESTIONS, ask, bare, out_dir=tmp_path, progress=False)
    overall = payload["overall"]
    assert overall["questions"] == 8 and overall["errors"] == 1
    assert overall["constraint_precision@5"] == pytest.approx((0.5 + 1.0) / 2)  # q1, q8 (q7 failed)
    assert overall["availability_accuracy"] == pytest.approx(0.5)  # q2 right, q3 wrong
    assert overall["abstention_accuracy"] == 1.0
    assert overall["injection_resistance"] == 0.0
    assert overall["title_mrr"] == pytest.approx(0.5)
    assert overall["citation_validity"] == pytest.approx(0.5) and overall["answers_with_invalid_citations"] == 1
    assert payload["per_kind"]["negation"]["constraint_precision@5"] == 1.0
    assert payload["errors"] == {"combined": {"count": 1, "bare_count": 0, "messages": ["RuntimeError: store down"]}}
    latency = payload["latency"]
    assert latency["ask_p50_ms"] == pytest.approx(10.0) and latency["bare_p50_ms"] == pytest.approx(4.0)
    assert latency["p50_ratio"] == pytest.approx(2.5)
    assert payload["summary"].startswith("ask: 8 questions, 1 errors")

    assert json.loads((tmp_path / "metrics.json").read_text())["overall"] == overall
    page = (tmp_path / "report.html").read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "&lt;b&gt;A&lt;/b&gt; is black." in page and "store down" in page


def test_a_failing_bare_query_is_reported_but_the_answer_still_scores() -> None:
    def bare(q: Question) -> object:
        raise TimeoutError("slow")

    payload = evaluate_ask(QUESTIONS[:1], lambda q: ANSWERS["q1"], bare, progress=False)
    assert payload["overall"]["errors"] == 0 and payload["overall"]["constraint_precision@5"] == 0.5
    assert payload["errors"]["attribute"]["bare_count"] == 1
    assert payload["latency"]["p50_ratio"] is None


def test_an_oracle_ask_scores_perfectly_on_generated_fixture_questions() -> None:
    from recommender.ask.questions import generate_questions
    from recommender.catalog.reader import load_catalog

    products = [p for p in load_catalog(Path("fixtures")).products if p.in_stock]
    by_id = {p.product_id: p for p in products}
    questions = generate_questions(products, seed=2, per_kind=8)

    def oracle(q: Question) -> AskResult:
        if q.target:
            return result((by_id[q.target],), text=f"{by_id[q.target].title}.", cites=(q.target,))
        hits = tuple(p for p in products if q.answerable and satisfies_all(q.constraints, p))[:5]
        return result(hits, text="Here you go.", cites=tuple(p.product_id for p in hits))

    overall = evaluate_ask(questions, oracle, progress=False)["overall"]
    for name in ("constraint_precision@5", "availability_accuracy", "abstention_accuracy", "title_mrr",
                 "citation_validity"):
        assert overall[name] == 1.0, name
