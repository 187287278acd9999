"""The size × figure table of `bench/shop_scale.py`, from the ``steps.json`` of every size in a state folder."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

Figure = Callable[[dict[str, Any]], Any]


def _get(step: str, *keys: str) -> Figure:
    def read(steps: dict[str, Any]) -> Any:
        value: Any = steps.get(step)
        for key in keys:
            if not isinstance(value, dict) or key not in value:
                return None
            value = value[key]
        return value
    return read


def _ratio(a: Figure, b: Figure, percent: bool = False) -> Figure:
    def read(steps: dict[str, Any]) -> Any:
        x, y = a(steps), b(steps)
        if not x or not y:
            return None
        return f"{100 * x / y:.1f}%" if percent else round(x / y, 3)
    return read


def _per_product(fig: Figure) -> Figure:
    def read(steps: dict[str, Any]) -> Any:
        x, n = fig(steps), steps.get("size")
        return round(x / n, 4) if x and n else None
    return read


def _rss(steps: dict[str, Any]) -> Any:
    ready, after = _get("api", "rss_mb_ready")(steps), _get("api", "rss_mb_after")(steps)
    return f"{'/'.join(map(str, ready))} → {'/'.join(map(str, after))}" if ready and after else None


def _cpu(step: str) -> Figure:
    def read(steps: dict[str, Any]) -> Any:
        job, store = _get(step, "cpu_s")(steps), _get(step, "weaviate_cpu_s")(steps)
        return round(job + (store or 0), 1) if job is not None else None
    return read


def _stages(step: str, *names: str) -> Figure:
    def read(steps: dict[str, Any]) -> Any:
        got = [_get(step, "stages_s", n)(steps) for n in names]
        return " / ".join(str(g) for g in got) if any(g is not None for g in got) else None
    return read


def _killed(steps: dict[str, Any]) -> Any:
    test = _get("vectorize", "kill_test")(steps)
    if not test:
        return None
    return f"{int(test['resumed_text_encoded'])} / {int(test['resumed_skipped_unchanged'])}"


ROWS: list[tuple[str, Figure]] = [
    ("generate: wall s", _get("generate", "seconds")),
    ("vectorize: wall s", _get("vectorize", "seconds")),
    ("vectorize: products/s", _ratio(lambda s: s.get("size"), _get("vectorize", "seconds"))),
    ("vectorize: job CPU s per product", _per_product(_get("vectorize", "cpu_s"))),
    ("vectorize: Weaviate CPU s per product", _per_product(_get("vectorize", "weaviate_cpu_s"))),
    ("vectorize: peak RSS MB", _get("vectorize", "peak_rss_mb")),
    ("vectorize: killed once, the re-run encoded / skipped", _killed),
    ("refresh full: wall s", _get("refresh_full", "seconds")),
    ("refresh full: job CPU s", _get("refresh_full", "cpu_s")),
    ("refresh full: Weaviate CPU s", _get("refresh_full", "weaviate_cpu_s")),
    ("refresh full: peak RSS MB", _get("refresh_full", "peak_rss_mb")),
    ("refresh full: gate s", _get("refresh_full", "stages_s", "gate")),
    ("refresh full: lists s", _get("refresh_full", "stages_s", "lists")),
    ("1% edited: products", _get("edit_1pct", "changed")),
    ("refresh incremental: wall s", _get("refresh_incremental", "seconds")),
    ("refresh incremental / full (goal ≤ 5%)", _ratio(_get("refresh_incremental", "seconds"),
                                                      _get("refresh_full", "seconds"), percent=True)),
    ("refresh incremental: job + Weaviate CPU s", _cpu("refresh_incremental")),
    ("refresh incremental / full, CPU", _ratio(_cpu("refresh_incremental"), _cpu("refresh_full"), percent=True)),
    ("refresh incremental: import / vectorize / lists s", _stages("refresh_incremental", "import", "vectorize",
                                                                     "lists")),
    ("new day: events added", _get("new_day", "events_added")),
    ("refresh nightly (new events): wall s", _get("refresh_nightly", "seconds")),
    ("refresh nightly: job + Weaviate CPU s", _cpu("refresh_nightly")),
    ("refresh nightly: peak RSS MB", _get("refresh_nightly", "peak_rss_mb")),
]
for _name in ("anonymous", "personalised", "search", "ask", "bare"):
    ROWS += [(f"API {_name}: p50 / p99 ms", lambda s, n=_name: _pair(s, n)),
             (f"API {_name}: req/s", _get("api", _name, "req_s"))]
    if _name != "bare":
        ROWS += [(f"API {_name}: p50 ÷ bare p50", _get("api", _name, "x_bare_p50")),
                 (f"API {_name}: CPU ms per request (workers + Weaviate)", _get("api", _name, "cpu_ms_per_request"))]
ROWS.append(("API: RSS MB per worker, ready → after", _rss))
ROWS.append(("Weaviate RSS MB after the API loads", _get("api", "weaviate_rss_mb")))


def _pair(steps: dict[str, Any], name: str) -> Any:
    p50, p99 = _get("api", name, "p50_ms")(steps), _get("api", name, "p99_ms")(steps)
    return f"{p50} / {p99}" if p50 is not None else None


def collect(state: Path) -> dict[int, dict[str, Any]]:
    """Every size's recorded steps in ``state`` (``n<size>/steps.json``), by size."""
    out: dict[int, dict[str, Any]] = {}
    for path in sorted(state.glob("n*/steps.json")):
        size = int(path.parent.name[1:])
        out[size] = {**json.loads(path.read_text()), "size": size}
    return dict(sorted(out.items()))


def write_table(state: Path) -> str:
    """Write ``table.json`` and ``table.md`` into ``state``; the markdown (unfinished figures shown as —)."""
    sizes = collect(state)
    table = {name: {str(n): fig(steps) for n, steps in sizes.items()} for name, fig in ROWS}
    (state / "table.json").write_text(json.dumps(table, indent=2))
    head = "| figure | " + " | ".join(f"{n:,} products" for n in sizes) + " |"
    lines = [head, "|---|" + "---|" * len(sizes)]
    for name, row in table.items():
        lines.append(f"| {name} | " + " | ".join("—" if v is None else str(v) for v in row.values()) + " |")
    md = "\n".join(lines)
    (state / "table.md").write_text(md + "\n")
    return md
