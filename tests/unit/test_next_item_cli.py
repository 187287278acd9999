"""`recsys evaluate --protocol next-item`, `recsys train-sequence` and `recsys tune` end to end on a tiny catalog."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from jobs.cli import main


def write_catalog(folder: Path, users: int = 60, chains: int = 4, length: int = 8) -> None:
    """Shoppers walking consecutive steps of fixed item chains, one item a day (DATA.md format)."""
    folder.mkdir()
    items = [f"c{c}i{i}" for c in range(chains) for i in range(length)]
    with (folder / "products.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["product_id", "title"])
        w.writerows([[pid, f"item {pid}"] for pid in items])
    rng = np.random.default_rng(3)
    t0 = datetime(2024, 1, 1, 12, tzinfo=UTC)
    with (folder / "events.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["user_id", "product_id", "event", "timestamp"])
        for u in range(users):
            c, start = int(rng.integers(chains)), int(rng.integers(length - 4))
            for t in range(5):
                w.writerow([f"u{u}", f"c{c}i{start + t}", "purchase",
                            (t0 + timedelta(days=t)).isoformat().replace("+00:00", "Z")])


@pytest.mark.slow
def test_next_item_evaluation_tune_and_sequence_model(tmp_path: Path, capsys) -> None:
    catalog, data = tmp_path / "shop", tmp_path / "data"
    write_catalog(catalog)
    base = ["--data-dir", str(data)]
    day_sessions = tmp_path / "day-sessions.toml"  # DATA.md's user + day sessions, set explicitly for one run
    day_sessions.write_text("[collaborative]\nsession_gap_hours = 0\n")
    assert main([*base, "--config", str(day_sessions), "evaluate", "--protocol", "next-item", "--catalog",
                 str(catalog), "--out", str(tmp_path / "before"), "--no-progress"]) == 0
    before = json.loads((tmp_path / "before" / "metrics.json").read_text())
    assert before["protocol"] == "next-item" and before["tasks"] == 60 and before["catalog_size"] == 32
    for method in ("popularity", "als", "session", "for_you", "implicit_als"):
        figures = before["methods"][method]["all"]
        assert {"hr@5", "ndcg@5", "hr@10", "ndcg@10"} <= set(figures)
        assert 0.0 <= figures["ndcg@10"] <= figures["hr@10"] <= 1.0
    assert before["methods"]["session"]["all"]["hr@10"] == 0.0  # user + day sessions: no co-occurrence
    assert "sasrec" not in before["methods"]
    assert (tmp_path / "before" / "report.html").read_text().count("<img") == 2

    assert main([*base, "tune", "--catalog", str(catalog), "--max-tasks", "0", "--no-progress"]) == 0
    tuned = json.loads((data / "models" / "tuned" / "current").parent.joinpath(
        (data / "models" / "tuned" / "current").read_text().strip(), "tuned.json").read_text())
    assert tuned["settings"]["collaborative"]["session_gap_hours"] == 72.0

    assert main([*base, "train-sequence", "--catalog", str(catalog), "--max-epochs", "2", "--no-progress"]) == 0
    assert main([*base, "evaluate", "--protocol", "next-item", "--catalog", str(catalog), "--out",
                 str(tmp_path / "after"), "--no-progress"]) == 0
    after = json.loads((tmp_path / "after" / "metrics.json").read_text())
    assert after["collaborative"]["session_gap_hours"] == 72.0  # the tuned (and shipped) default
    assert after["methods"]["session"]["all"]["hr@10"] > 0.0
    assert "sasrec" in after["methods"] and after["sequence_model"]["epochs"] == 2
    assert "tune: chosen" in capsys.readouterr().out
