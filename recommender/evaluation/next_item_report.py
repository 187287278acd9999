"""report.html of the next-item protocol: HR@10 / NDCG@10 per method beside the published figures."""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from recommender.evaluation.report import _bar_chart

COLUMNS = ("hr@5", "ndcg@5", "hr@10", "ndcg@10", "hr@20", "ndcg@20", "mrr")
DEFINITIONS = {
    "hr@k": "share of shoppers whose held-out item is in the top k of all items (their history excluded)",
    "ndcg@k": "mean of 1/log2(rank+1) of the held-out item when in the top k, else 0",
    "mrr": "mean of 1/rank of the held-out item over the full ranking",
}


def write_next_item_report(out_dir: Path, payload: Mapping[str, Any]) -> Path:
    """A self-contained HTML page: headline, charts, the table with published figures, definitions."""
    methods = dict(payload["methods"])
    shown = {**methods, **{f"published {name}": {"all": figures} for name, figures in payload["published"].items()}}
    charts = "".join(f'<img alt="{m}" src="data:image/png;base64,{_bar_chart(shown, m, title)}">'
                     for m, title in (("ndcg@10", "NDCG@10 by method"), ("hr@10", "HR@10 by method")))
    best = {c: max(m["all"].get(c, 0.0) for m in methods.values()) for c in COLUMNS}
    rows = []
    for name, m in shown.items():
        cells = "".join(f'<td class="{"best" if m["all"].get(c) == best[c] else ""}">'
                        f'{m["all"][c]:.4f}</td>' if c in m["all"] else "<td>–</td>" for c in COLUMNS)
        rows.append(f"<tr><td>{html.escape(name)}</td>{cells}</tr>")
    head = "".join(f"<th>{c}</th>" for c in ("method", *COLUMNS))
    body = f"""<!doctype html><html><head><meta charset="utf-8"><title>Next-item evaluation</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em;max-width:1000px}} table{{border-collapse:collapse}}
td,th{{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}} th:first-child,td:first-child{{text-align:left}}
.best{{font-weight:bold;color:#1a6}} img{{max-width:100%}}</style></head><body>
<h1>Next-item evaluation (leave-last-out, full ranking)</h1>
<p>{html.escape(payload["headline"])}</p>
<p>{payload["tasks"]} shoppers · {payload["catalog_size"]} items ranked · stage {html.escape(payload["stage"])}</p>
{charts}<h2>All figures</h2><table><tr>{head}</tr>{"".join(rows)}</table>
<h2>Definitions</h2><ul>{"".join(f"<li><b>{n}</b>: {html.escape(d)}</li>" for n, d in DEFINITIONS.items())}</ul>
</body></html>"""
    path = out_dir / "report.html"
    path.write_text(body)
    return path
