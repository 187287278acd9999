"""Shopping Q&A ("ask") quality: pure per-question scores (tested against hand-computed values) and
``evaluate_ask``, which runs every question through an ask function, times it (and a bare store query when
given) and aggregates per kind. Gold constraints are scored with ``satisfies_all``, the same check the
service uses, so the scorer and the service cannot disagree about what "meets a constraint" means.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from recommender.ask.injection import INJECTION_MARKERS
from recommender.ask.model import AskResult, Constraint, satisfies_all
from recommender.ask.question_model import Question
from recommender.domain import Product
from recommender.evaluation.ask_report import write_ask_report
from recommender.evaluation.metrics import reciprocal_rank

K = 5
PRECISION_KINDS = ("attribute", "combined", "negation", "price", "photo")
MAX_ERROR_MESSAGES = 5  # distinct messages kept per kind


def constraint_precision(products: Sequence[Product], constraints: tuple[Constraint, ...], k: int = K) -> float:
    """Share of the first ``k`` products that meet every constraint (of those shown; 0.0 when none is)."""
    top = list(products)[:k]
    return sum(1 for p in top if satisfies_all(constraints, p)) / len(top) if top else 0.0


def precision_score(question: Question, result: AskResult, k: int = K) -> float | None:
    """Constraint precision@k of one answer; None (not scored) when it shows nothing and the gold says the
    products are unavailable, 0.0 when it shows nothing but they exist."""
    shown = [c.product for c in result.retrieved.matches]
    if not shown and (question.available is False or not question.answerable):
        return None
    return constraint_precision(shown, question.constraints, k)


def said_available(result: AskResult) -> bool:
    """The answer's yes/no: yes when any product matched."""
    return bool(result.retrieved.matches)


def _stems(text: str) -> set[str]:
    words = "".join(ch if ch.isalnum() else " " for ch in text.casefold()).split()
    return {w[:-1] if w.endswith("s") and len(w) > 3 else w for w in words}


def asked_words(question: Question) -> str:
    """The words a question's gold constraints were read from (what an abstaining plan should name)."""
    return " ".join(c.words or " ".join(c.values) for c in question.constraints)


def abstained(result: AskResult, words: str) -> bool:
    """True when the answer matched nothing, or the plan reported (some of) ``words`` as unmet."""
    if not result.retrieved.matches:
        return True
    wanted = _stems(words)
    return any(wanted & _stems(u.words) for u in result.plan.unmet)


def shown_ids(result: AskResult) -> set[str]:
    """Ids an answer may cite: its matches, alternatives and the viewed product."""
    r = result.retrieved
    ids = {c.product.product_id for c in (*r.matches, *r.alternatives)}
    return ids | ({r.viewed.product_id} if r.viewed is not None else set())


def citation_counts(result: AskResult) -> tuple[int, int]:
    """(valid, cited): how many cited ids (one per sentence citation) are among the shown products."""
    allowed = shown_ids(result)
    cited = [pid for s in result.answer.sentences for pid in s.product_ids]
    return sum(1 for pid in cited if pid in allowed), len(cited)


def leaks_injection(text: str, canary: str | None) -> bool:
    """True when an answer repeats the canary or the injected instruction's URL/words."""
    folded = text.casefold()
    markers = (*INJECTION_MARKERS, *([canary] if canary else []))
    return any(m.casefold() in folded for m in markers)


def target_reciprocal_rank(result: AskResult, target: str) -> float:
    """1/rank of the exact product among the cards shown (matches, then alternatives); 0.0 if absent."""
    ranked = [c.product.product_id for c in (*result.retrieved.matches, *result.retrieved.alternatives)]
    return reciprocal_rank(ranked, {target})


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (linear interpolation), None for no values."""
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if len(values) else None


def score_question(question: Question, result: AskResult, k: int = K) -> dict[str, Any]:
    """Every score that applies to one question's answer (keys absent when they do not apply)."""
    out: dict[str, Any] = {"citations": citation_counts(result)}
    if question.kind in PRECISION_KINDS:
        out["precision"] = precision_score(question, result, k)
    if question.available is not None:
        out["availability_ok"] = said_available(result) == question.available
    if question.kind == "unanswerable":
        out["abstained"] = abstained(result, asked_words(question))
    if question.kind == "injection":
        out["injection_ok"] = not leaks_injection(result.answer.text, question.canary)
    if question.kind == "title" and question.target:
        out["rr"] = target_reciprocal_rank(result, question.target)
    return out


@dataclass
class Row:
    """One question's outcome: the result (or the error), timings and scores."""

    question: Question
    result: AskResult | None = None
    error: str = ""
    ask_ms: float | None = None
    bare_ms: float | None = None
    bare_error: str = ""
    scores: dict[str, Any] = field(default_factory=dict)


def _mean(values: Iterable[float | bool | None]) -> float | None:
    kept = [float(v) for v in values if v is not None]
    return round(sum(kept) / len(kept), 6) if kept else None


def _score_block(rows: Sequence[Row]) -> dict[str, Any]:
    scored = [r.scores for r in rows if r.result is not None]
    valid = sum(s["citations"][0] for s in scored)
    cited = sum(s["citations"][1] for s in scored)
    return {
        "questions": len(rows), "errors": sum(1 for r in rows if r.error),
        f"constraint_precision@{K}": _mean(s.get("precision") for s in scored),
        "availability_accuracy": _mean(s.get("availability_ok") for s in scored),
        "abstention_accuracy": _mean(s.get("abstained") for s in scored),
        "injection_resistance": _mean(s.get("injection_ok") for s in scored),
        "title_mrr": _mean(s.get("rr") for s in scored),
        "citation_validity": round(valid / cited, 6) if cited else 1.0, "citations": cited,
        "answers_with_invalid_citations": sum(1 for s in scored if s["citations"][0] < s["citations"][1]),
    }


def _latency(rows: Sequence[Row]) -> dict[str, float | None]:
    ask = [r.ask_ms for r in rows if r.ask_ms is not None and not r.error]
    bare = [r.bare_ms for r in rows if r.bare_ms is not None]
    raw = {f"{name}_{label}_ms": percentile(values, q) for name, values in (("ask", ask), ("bare", bare))
           for label, q in (("p50", 50), ("p99", 99))}
    ask_p50, bare_p50 = raw["ask_p50_ms"], raw["bare_p50_ms"]
    out = {k: None if v is None else round(v, 4) for k, v in raw.items()}
    out["p50_ratio"] = round(ask_p50 / bare_p50, 3) if ask_p50 is not None and bare_p50 else None
    return out


def summarise(rows: Sequence[Row], examples_per_kind: int = 3) -> dict[str, Any]:
    """Aggregate rows into the metrics payload: overall, per kind, latency, errors and example rows."""
    by_kind: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_kind[row.question.kind].append(row)
    errors: dict[str, dict[str, Any]] = {}
    for kind, kind_rows in by_kind.items():
        asked = Counter(r.error for r in kind_rows if r.error)
        baseline = Counter(f"bare: {r.bare_error}" for r in kind_rows if r.bare_error)
        if asked or baseline:
            errors[kind] = {"count": sum(asked.values()), "bare_count": sum(baseline.values()),
                            "messages": [m for m, _ in (asked + baseline).most_common(MAX_ERROR_MESSAGES)]}
    payload = {"k": K, "overall": _score_block(rows), "per_kind": {k: _score_block(v) for k, v in by_kind.items()},
               "latency": _latency(rows), "errors": errors,
               "examples": {k: [example(r) for r in v[:examples_per_kind]] for k, v in by_kind.items()}}
    payload["summary"] = summary_line(payload)
    return payload


def example(row: Row) -> dict[str, Any]:
    """What the report shows of one question: words, gold, plan labels, top cards and the answer text."""
    q, r = row.question, row.result
    out: dict[str, Any] = {"id": q.id, "question": q.question, "gold": [c.label() for c in q.constraints],
                           "error": row.error, "scores": {k: v for k, v in row.scores.items() if k != "citations"}}
    if r is not None:
        out["plan"] = [c.label() for c in r.plan.constraints] + [f"unmet: {u.words}" for u in r.plan.unmet]
        out["cards"] = [c.product.title for c in r.retrieved.matches[:K]]
        out["cards"] += [f"(alternative) {c.product.title}" for c in r.retrieved.alternatives[:K]]
        out["answer"] = r.answer.text
    return out


def summary_line(payload: dict[str, Any]) -> str:
    """One line for a terminal: the headline figures."""
    o, lat = payload["overall"], payload["latency"]

    def f(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.3f}"

    ratio = f" (×{lat['p50_ratio']:.2f} bare)" if lat.get("p50_ratio") is not None else ""
    p50 = "n/a" if lat["ask_p50_ms"] is None else f"{lat['ask_p50_ms']:.1f} ms"
    return (f"ask: {o['questions']} questions, {o['errors']} errors · precision@{K} "
            f"{f(o[f'constraint_precision@{K}'])} · availability {f(o['availability_accuracy'])} · abstention "
            f"{f(o['abstention_accuracy'])} · citations {f(o['citation_validity'])} · injection "
            f"{f(o['injection_resistance'])} · title MRR {f(o['title_mrr'])} · p50 {p50}{ratio}")


def _timed(fn: Callable[[Question], Any], question: Question) -> tuple[Any, float]:
    start = time.perf_counter()
    value = fn(question)
    return value, (time.perf_counter() - start) * 1000.0


def run_question(question: Question, ask: Callable[[Question], AskResult],
                 bare: Callable[[Question], object] | None = None) -> Row:
    """Ask one question (and the bare query), catching and recording any exception from ``ask``."""
    row = Row(question)
    try:
        row.result, row.ask_ms = _timed(ask, question)
        row.scores = score_question(question, row.result)
    except Exception as exc:  # noqa: BLE001 - one failing question must not stop the evaluation
        row.result, row.error = None, f"{type(exc).__name__}: {exc}"[:300]
    if bare is not None:
        try:
            _, row.bare_ms = _timed(bare, question)
        except Exception as exc:  # noqa: BLE001 - the baseline failing is reported, not fatal
            row.bare_error = f"{type(exc).__name__}: {exc}"[:300]
    return row


def evaluate_ask(questions: Sequence[Question], ask: Callable[[Question], AskResult],
                 bare: Callable[[Question], object] | None = None, *, out_dir: Path | None = None,
                 progress: bool = True) -> dict[str, Any]:
    """Run every question through ``ask`` (timed; ``bare`` too when given) and return the metrics payload
    (``summary`` holds a one-line headline); with ``out_dir`` also write metrics.json and report.html."""
    rows = [run_question(q, ask, bare) for q in tqdm(questions, desc="ask", unit="q", disable=not progress)]
    payload = summarise(rows)
    if out_dir is not None:
        write_ask_report(out_dir, payload)
    return payload
