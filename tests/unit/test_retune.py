"""The refresh's tune stage (`recommender.tuning.periodic`) on constructed data: it tunes when nothing was tuned
or the choice is stale, reuses a fresh choice, never searches explicit settings or ``factors``, and the recorded
choice becomes the next run's defaults."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from recommender.config import CollaborativeSettings, RefreshSettings, Settings, load_settings
from recommender.events.log import Event
from recommender.tuning.periodic import first_visits, retune_if_due
from recommender.tuning.store import tuned_at
from tests.unit.test_tune import T0, chain_events

FAST = CollaborativeSettings(factors=4, iterations=3, threads=1, session_gap_hours=0.0)


def settings_for(data_dir: Path, **refresh: float) -> Settings:
    return Settings(data_dir=data_dir, collaborative=FAST,
                    refresh=replace(RefreshSettings(), **{"retune_days": 7.0, **refresh}))


def test_first_visits_keep_one_event_per_product_at_its_first_time_with_the_strongest_type() -> None:
    events = [Event("u", "a", "view", T0, "s"), Event("u", "b", "view", T0 + timedelta(hours=1), "s"),
              Event("u", "a", "purchase", T0 + timedelta(hours=2), "s"), Event("v", "a", "cart", T0, "t")]
    got = {(e.user_id, e.product_id): (e.event, e.timestamp) for e in first_visits(events)}
    assert got == {("u", "a"): ("purchase", T0), ("u", "b"): ("view", T0 + timedelta(hours=1)),
                   ("v", "a"): ("cart", T0)}


@pytest.mark.slow
def test_tunes_when_due_reuses_while_fresh_and_the_choice_becomes_the_default(tmp_path: Path) -> None:
    events = chain_events()
    settings, stage = retune_if_due(events, settings_for(tmp_path), progress=False)
    assert stage.ran and stage.version == tuned_at(tmp_path)[0]
    # one item a day: only the gap rule joins a shopper's days into sessions, so the search must find it
    assert stage.chosen is not None and stage.chosen["session_gap_hours"] == 72.0
    assert "factors" not in stage.chosen and settings.collaborative.factors == FAST.factors
    assert settings.collaborative.session_gap_hours == 72.0 and stage.score >= stage.baseline
    record = json.loads((tmp_path / "models" / "tuned" / stage.version / "tuned.json").read_text())
    assert record["settings"]["collaborative"]["factors"] == FAST.factors  # kept: the store's vectors' length
    assert record["source"]["refresh"] and record["source"]["not_searched"] == ["factors"]
    assert load_settings({}, None, {"data_dir": tmp_path}).collaborative.session_gap_hours == 72.0

    again, fresh = retune_if_due(events, settings_for(tmp_path), progress=False)
    assert not fresh.ran and fresh.version == stage.version and "reused" in fresh.reason
    assert again == settings_for(tmp_path)  # nothing changed: the caller's settings come back as they were

    later = datetime.now(UTC) + timedelta(days=8)
    _, stale = retune_if_due(events, settings_for(tmp_path), progress=False, now=later)
    assert stale.ran and stale.version != stage.version and tuned_at(tmp_path)[0] == stale.version
    _, off = retune_if_due(events, settings_for(tmp_path, retune_days=0), progress=False, now=later)
    assert not off.ran and "off" in off.reason


@pytest.mark.slow
def test_explicit_settings_are_not_searched(tmp_path: Path) -> None:
    base = replace(settings_for(tmp_path), explicit=frozenset({"collaborative.session_gap_hours"}))
    settings, stage = retune_if_due(chain_events(), base, progress=False)
    assert stage.ran and stage.chosen is not None and "session_gap_hours" not in stage.chosen
    assert settings.collaborative.session_gap_hours == 0.0  # the explicit value stands


def test_too_few_shoppers_to_judge_by_keeps_the_settings(tmp_path: Path) -> None:
    settings, stage = retune_if_due(chain_events(users=5), settings_for(tmp_path), progress=False)
    assert not stage.ran and "too few" not in stage.reason and "5 shoppers" in stage.reason
    assert settings == settings_for(tmp_path) and tuned_at(tmp_path) is None
