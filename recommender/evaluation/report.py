"""metrics.json (stable keys) and report.html (plots a person would rather look at than read)."""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

DEFINITIONS = {
    "hit_rate@k": "share of tasks with at least one relevant product in the top k",
    "recall@k": "relevant products found in the top k / relevant products, averaged over tasks",
    "ndcg@k": "binary-relevance NDCG: Σ 1/log2(rank+1) over hits, divided by the ideal, averaged",
    "mrr": "mean of 1/rank of the first relevant product (0 when none is ranked)",
    "coverage@k": "share of the catalog shown in at least one top-k list",
    "diversity@k": "mean pairwise cosine distance of a list's image vectors, averaged over lists",
    "novelty@k": "mean −log2(share of training users who touched the item) over list items",
}


def write_metrics(out_dir: Path, payload: Mapping[str, Any]) -> Path:
    """Write metrics.json atomically."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "metrics.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True))
    tmp.replace(path)
    return path


def _bar_chart(methods: Mapping[str, Any], metric: str, title: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(methods)
    slices = [("all", "all anchors", "#4c72b0"), ("cold_anchor", "cold-start anchors", "#dd8452"),
              ("returning_shopper", "returning shoppers", "#55a868")]
    fig, ax = plt.subplots(figsize=(9, 3.6), dpi=110)
    width = 0.27
    for i, (key, label, colour) in enumerate(slices):
        values = [methods[m].get(key, {}).get(metric, 0.0) for m in names]
        bars = ax.bar([x + (i - 1) * width for x in range(len(names))], values, width, label=label, color=colour)
        ax.bar_label(bars, fmt="%.3f", fontsize=6, padding=1)
    ax.set_xticks(range(len(names)), names, rotation=15)
    ax.set_title(title)
    ax.set_ylabel(metric)
    ax.legend(fontsize=7, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def write_report(out_dir: Path, payload: Mapping[str, Any]) -> Path:
    """A self-contained HTML page: headline, charts, the full table, definitions."""
    k = payload["k"]
    methods = payload["methods"]
    charts = "".join(
        f'<img alt="{html.escape(metric)}" src="data:image/png;base64,{_bar_chart(methods, metric, title)}">'
        for metric, title in ((f"ndcg@{k}", f"NDCG@{k} by method"), (f"hit_rate@{k}", f"HitRate@{k} by method")))
    body = f"""<!doctype html><html><head><meta charset="utf-8"><title>Recommender evaluation</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em;max-width:1000px}} table{{border-collapse:collapse}}
td,th{{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}} th:first-child,td:first-child{{text-align:left}}
.best{{font-weight:bold;color:#1a6}} img{{max-width:100%}}</style></head><body>
<h1>Recommender evaluation</h1>
<p>{html.escape(payload.get("headline", ""))}</p>
<p>{payload["tasks"]} anchor tasks · split at {html.escape(str(payload.get("split_at")))} ·
catalog {payload["catalog_size"]} products · k = {k}</p>
{charts}
{_table(methods, k)}
<h2>Definitions</h2><ul>{"".join(f"<li><b>{html.escape(n)}</b>: {html.escape(d)}</li>"
                                 for n, d in DEFINITIONS.items())}</ul>
</body></html>"""
    path = out_dir / "report.html"
    path.write_text(body)
    return path


def _table(methods: Mapping[str, Any], k: int) -> str:
    cols = [f"ndcg@{k}", f"hit_rate@{k}", f"recall@{k}", "mrr", f"coverage@{k}", f"diversity@{k}", f"novelty@{k}"]
    rows = []
    for slice_name in ("all", "cold_anchor", "warm_anchor", "returning_shopper", "new_shopper"):
        best = {c: max((m.get(slice_name, {}).get(c, 0.0) for m in methods.values()), default=0.0) for c in cols}
        rows.append(f'<tr><th colspan="{len(cols) + 2}" style="text-align:left;padding-top:12px">'
                    f"{slice_name.replace('_', ' ')}</th></tr>")
        for name, m in methods.items():
            s = m.get(slice_name, {})
            cells = "".join(f'<td class="{"best" if s.get(c) == best[c] and best[c] > 0 else ""}">'
                            f'{s.get(c, 0.0):.4f}</td>' for c in cols)
            rows.append(f"<tr><td>{html.escape(name)}</td><td>{s.get('tasks', 0)}</td>{cells}</tr>")
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ["method", "tasks", *cols])
    return f"<h2>All figures</h2><table><tr>{head}</tr>{''.join(rows)}</table>"
