"""The ask evaluation's outputs: metrics.json (via the shared ``write_metrics``) and a self-contained
report.html — the figures overall and per kind, then example rows. Every catalog- or answer-derived string
is HTML-escaped: answers can carry injected text, and the report must not execute it."""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from recommender.evaluation.report import write_metrics

DEFINITIONS = {
    "constraint_precision@k": "share of the top-k matches meeting every gold constraint (attribute, combined, "
                              "negation, price, photo); no matches scores 0 unless the gold says none exist",
    "availability_accuracy": "said yes (any match) vs the gold: the products are / are not in stock",
    "abstention_accuracy": "unanswerable questions answered with no match, or with the asked words unmet",
    "citation_validity": "share of cited product ids that are among the products the answer showed",
    "injection_resistance": "share of answers about injected products repeating neither canary nor instruction",
    "title_mrr": "mean 1/rank of the exact product for a question made of its title",
    "p50_ratio": "median ask latency / median bare hybrid store query latency",
}
COLUMNS = ("questions", "errors", "constraint_precision@5", "availability_accuracy", "abstention_accuracy",
           "citation_validity", "injection_resistance", "title_mrr")


def write_ask_report(out_dir: Path, payload: Mapping[str, Any]) -> tuple[Path, Path]:
    """Write metrics.json and report.html into ``out_dir``."""
    metrics = write_metrics(out_dir, payload)
    report = out_dir / "report.html"
    tmp = report.with_suffix(".tmp")
    tmp.write_text(report_html(payload), encoding="utf-8")
    tmp.replace(report)
    return metrics, report


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _cell(value: Any) -> str:
    if value is None:
        return "<td>–</td>"
    return f"<td>{value:.3f}</td>" if isinstance(value, float) else f"<td>{_e(value)}</td>"


def _figures(payload: Mapping[str, Any]) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in ("kind", *COLUMNS))
    rows = [f"<tr><th>all</th>{''.join(_cell(payload['overall'].get(c)) for c in COLUMNS)}</tr>"]
    for kind, block in sorted(payload["per_kind"].items()):
        rows.append(f"<tr><td>{_e(kind)}</td>{''.join(_cell(block.get(c)) for c in COLUMNS)}</tr>")
    latency = "".join(f"<tr><td>{_e(k)}</td>{_cell(v)}</tr>" for k, v in payload["latency"].items())
    return (f"<h2>Figures</h2><table><tr>{head}</tr>{''.join(rows)}</table>"
            f"<h2>Latency</h2><table>{latency}</table>")


def _errors(payload: Mapping[str, Any]) -> str:
    if not payload["errors"]:
        return ""
    items = "".join(f"<li><b>{_e(kind)}</b>: {e['count']} ask, {e.get('bare_count', 0)} bare — "
                    f"{'; '.join(_e(m) for m in e['messages'])}</li>" for kind, e in sorted(payload["errors"].items()))
    return f"<h2>Errors</h2><ul>{items}</ul>"


def _examples(payload: Mapping[str, Any]) -> str:
    out = ["<h2>Examples</h2>"]
    for kind, examples in sorted(payload["examples"].items()):
        rows = []
        for ex in examples:
            cards = "<br>".join(_e(t) for t in ex.get("cards", []))
            scores = ", ".join(f"{_e(k)}={_e(v)}" for k, v in ex.get("scores", {}).items())
            answer = _e(ex.get("answer", "")) or f"<i>error: {_e(ex.get('error', ''))}</i>"
            rows.append(f"<tr><td>{_e(ex['question'])}</td><td>{_e('; '.join(ex['gold']))}</td>"
                        f"<td>{_e('; '.join(ex.get('plan', [])))}</td><td>{cards}</td><td>{answer}</td>"
                        f"<td>{scores}</td></tr>")
        head = "".join(f"<th>{h}</th>" for h in ("question", "gold", "plan", "top cards", "answer", "scores"))
        out.append(f"<h3>{_e(kind)}</h3><table class=ex><tr>{head}</tr>{''.join(rows)}</table>")
    return "".join(out)


def report_html(payload: Mapping[str, Any]) -> str:
    """The whole report page as one string."""
    definitions = "".join(f"<li><b>{_e(n)}</b>: {_e(d)}</li>" for n, d in DEFINITIONS.items())
    return ("<!doctype html><html><head><meta charset=utf-8><title>Ask evaluation</title><style>"
            "body{font:14px system-ui,sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse}"
            "td,th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}"
            ".ex td{max-width:320px}</style></head><body><h1>Ask evaluation</h1>"
            f"<p>{_e(payload.get('summary', ''))}</p>{_figures(payload)}{_errors(payload)}{_examples(payload)}"
            f"<h2>Definitions</h2><ul>{definitions}</ul></body></html>")
