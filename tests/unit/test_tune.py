"""`recsys tune` on constructed data: the known-best grid point wins, and the choice becomes the next defaults."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from recommender.config import CollaborativeSettings, load_settings
from recommender.evaluation.next_item import leave_last_out
from recommender.events.log import Event, default_session
from recommender.tuning.search import tune
from recommender.tuning.store import save_tuned

T0 = datetime(2024, 1, 1, 12, tzinfo=UTC)


def chain_events(users: int = 120, chains: int = 6, length: int = 8, seed: int = 0) -> list[Event]:
    """Each shopper walks 4 consecutive steps of one of ``chains`` fixed item chains, one item a day (so the
    default user + day session holds one item and co-occurrence is empty unless a gap rule joins the days)."""
    rng = np.random.default_rng(seed)
    out = []
    for u in range(users):
        c, start = int(rng.integers(chains)), int(rng.integers(length - 3))
        for t in range(4):
            ts = T0 + timedelta(days=t)
            out.append(Event(f"u{u}", f"c{c}i{start + t}", "purchase", ts, default_session(f"u{u}", ts)))
    return out


@pytest.fixture(scope="module")
def result():
    split = leave_last_out(chain_events())
    start = CollaborativeSettings(factors=4, iterations=3, threads=1)
    return tune(split, start, {"session_gap_hours": (0.0, 72.0)}, progress=False)


def test_tune_picks_the_session_rule_that_sees_the_chains(result) -> None:
    assert result.chosen == {"session_gap_hours": 72.0}
    by_gap = {t["settings"]["session_gap_hours"]: t["ndcg@10"] for t in result.trials}
    assert by_gap[72.0] > by_gap[0.0]
    assert result.score == pytest.approx(by_gap[72.0])
    assert result.score >= result.baseline["ndcg@10"]  # never below plain implicit ALS on the same split


def test_tuned_choice_becomes_the_default_but_explicit_settings_win(result, tmp_path) -> None:
    version = save_tuned(tmp_path, result, {"catalog": "constructed"})
    record = json.loads((tmp_path / "models" / "tuned" / version / "tuned.json").read_text())
    assert record["settings"] == {"collaborative": {"session_gap_hours": 72.0}} and record["created_at"]
    save_tuned(tmp_path, replace(result, chosen={"session_gap_hours": 24.0}), {"catalog": "constructed"})
    settings = load_settings({}, None, {"data_dir": tmp_path})  # the newest choice is current
    assert settings.collaborative.session_gap_hours == 24.0 != CollaborativeSettings().session_gap_hours
    assert settings.collaborative.factors == CollaborativeSettings().factors
    assert "collaborative.session_gap_hours" not in settings.explicit  # a tuned value is a default
    explicit = load_settings({"RECSYS_COLLABORATIVE__SESSION_GAP_HOURS": "5"}, None, {"data_dir": tmp_path})
    assert explicit.collaborative.session_gap_hours == 5.0
    assert "collaborative.session_gap_hours" in explicit.explicit
    untuned = load_settings({}, None, {"data_dir": tmp_path / "none"})
    assert untuned.collaborative.session_gap_hours == CollaborativeSettings().session_gap_hours == 72.0
