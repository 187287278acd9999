"""The resumable step bookkeeping and the deterministic catalog edits of `bench/shop_scale.py`."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from scale_state import StepLog, append_next_day, change_share

from recommender.synthetic.shop import generate_catalog


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("shop")
    generate_catalog(out, n_products=300, n_shoppers=40, n_events=600, seed=3, image_size=16, progress=False)
    return out


def test_finished_steps_survive_a_restart_and_are_skipped(tmp_path: Path) -> None:
    log = StepLog(tmp_path / "steps.json")
    log.start("generate")
    log.record("generate", {"seconds": 1.5})
    log.start("vectorize")  # killed before it finished
    again = StepLog(tmp_path / "steps.json")
    assert again.done("generate") and again.get("generate") == {"seconds": 1.5}
    assert not again.done("vectorize")
    assert again.start("vectorize") == 1  # one earlier attempt never finished
    again.record("vectorize", {"seconds": 9.0})
    third = StepLog(tmp_path / "steps.json")
    assert third.get("vectorize") == {"seconds": 9.0, "interrupted_attempts": 1}
    assert not third.done("_running")


def test_kept_values_are_stored_beside_the_steps(tmp_path: Path) -> None:
    StepLog(tmp_path / "s.json").keep("weaviate_ports", [1, 2, 3])
    assert StepLog(tmp_path / "s.json").value("weaviate_ports") == [1, 2, 3]
    assert StepLog(tmp_path / "s.json").value("missing", 7) == 7


def copy(shop: Path, to: Path) -> Path:
    to.mkdir()
    for name in ("products.csv", "events.csv"):
        (to / name).write_bytes((shop / name).read_bytes())
    return to


def test_change_share_edits_exactly_one_percent_deterministically(shop: Path, tmp_path: Path) -> None:
    a, b = copy(shop, tmp_path / "a"), copy(shop, tmp_path / "b")
    before = {r["product_id"]: r for r in rows(a / "products.csv")}
    changed = change_share(a, 0.01, seed=1, tag="new season")
    assert changed == change_share(b, 0.01, seed=1, tag="new season")
    assert (a / "products.csv").read_bytes() == (b / "products.csv").read_bytes()
    after = {r["product_id"]: r for r in rows(a / "products.csv")}
    differ = [pid for pid in before if before[pid] != after[pid]]
    assert differ == changed and len(changed) == 3  # 1% of 300
    for pid in changed:
        assert after[pid]["title"] == before[pid]["title"] + " (new season)"
        assert float(after[pid]["price"]) == pytest.approx(round(float(before[pid]["price"]) * 0.9, 2))
    assert list(after) == list(before)  # same products, same order


def test_change_share_differs_by_seed_and_changes_at_least_one(shop: Path, tmp_path: Path) -> None:
    a, b = copy(shop, tmp_path / "a"), copy(shop, tmp_path / "b")
    assert change_share(a, 0.01, seed=1, tag="x") != change_share(b, 0.01, seed=2, tag="x")
    assert len(change_share(a, 0.0001, seed=1, tag="y")) == 1


def test_next_day_appends_an_average_day_after_the_last_one(shop: Path, tmp_path: Path) -> None:
    a = copy(shop, tmp_path / "a")
    before = rows(a / "events.csv")
    last = max(r["timestamp"] for r in before)
    days = len({r["timestamp"][:10] for r in before})
    added = append_next_day(a, "-next")
    after = rows(a / "events.csv")
    assert added == round(len(before) / days) > 0
    assert after[:len(before)] == before and len(after) == len(before) + added
    new = after[len(before):]
    assert min(r["timestamp"][:10] for r in new) > last[:10]  # every one after the log's last day
    assert all(r["session_id"].endswith("-next") for r in new)
    assert {(r["user_id"], r["product_id"], r["event"]) for r in new} <= {(r["user_id"], r["product_id"], r["event"])
                                                                         for r in before}
