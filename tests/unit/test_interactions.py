"""Id maps, event weights and time decay, checked against hand-computed values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from recommender.config import CollaborativeSettings
from recommender.events.interactions import IdMap, build_interactions, decay, user_items
from recommender.events.log import Event

T0 = datetime(2024, 6, 1, tzinfo=UTC)


def ev(user: str, item: str, kind: str, days_ago: float) -> Event:
    return Event(user, item, kind, T0 - timedelta(days=days_ago), "s")


def test_id_map_round_trip_keeps_strings_and_order() -> None:
    ids = IdMap(["007", "7", "a b", "007"])
    assert len(ids) == 3 and list(ids) == ["007", "7", "a b"]
    assert [ids.index(x) for x in ids] == [0, 1, 2] and [ids.id(i) for i in range(3)] == list(ids)
    assert ids.index("missing") is None and "7" in ids and "07" not in ids
    assert IdMap(ids.ids) == ids and ids.add("new") == 3


def test_decay_halves_every_half_life() -> None:
    assert np.allclose(decay(np.array([0.0, 30.0, 60.0, -5.0]), 30.0), [1.0, 0.5, 0.25, 1.0])
    assert np.allclose(decay(np.array([0.0, 999.0]), 0.0), [1.0, 1.0])


def test_weights_and_decay_sum_per_cell() -> None:
    cfg = CollaborativeSettings(view_weight=1.0, cart_weight=3.0, purchase_weight=5.0, half_life_days=10.0)
    events = [ev("u1", "a", "view", 0), ev("u1", "a", "purchase", 10), ev("u1", "b", "cart", 20),
              ev("u2", "b", "view", 10), ev("u2", "b", "view", 10)]
    got = build_interactions(events, cfg, reference=T0)
    assert got.events == 5 and list(got.users) == ["u1", "u2"] and list(got.items) == ["a", "b"]
    cells = user_items(got)
    assert cells["u1"] == pytest.approx({"a": 1.0 + 5.0 * 0.5, "b": 3.0 * 0.25})
    assert cells["u2"] == pytest.approx({"b": 2 * 0.5})
    later = build_interactions(events, cfg, reference=T0 + timedelta(days=10))
    assert user_items(later)["u2"]["b"] == pytest.approx(2 * 0.25)


def test_light_users_are_dropped_and_the_hash_tracks_the_data() -> None:
    cfg = CollaborativeSettings(min_user_items=2, half_life_days=0)
    events = [ev("u1", "a", "view", 1), ev("u1", "b", "view", 1), ev("u2", "a", "view", 1), ev("u2", "a", "cart", 1)]
    got = build_interactions(events, cfg, reference=T0)
    assert list(got.users) == ["u1"] and got.matrix.shape == (1, 2)
    assert got.data_hash == build_interactions(list(events), cfg, reference=T0).data_hash
    assert got.data_hash != build_interactions([*events[:-1], ev("u2", "b", "cart", 1)], cfg, reference=T0).data_hash


def test_the_log_fast_path_builds_the_same_matrix(tmp_path: Path) -> None:
    from recommender.events.backend import SqliteEventLog
    from recommender.events.interactions import interactions_from_rows

    cfg = CollaborativeSettings(half_life_days=7.0)
    events = [ev("u1", "a", "view", 3), ev("u2", "b", "cart", 1), ev("u1", "b", "purchase", 0.5)]
    with SqliteEventLog(tmp_path / "log.sqlite3") as log:
        log.append(events)
        fast = interactions_from_rows(log.rows(), cfg, reference=T0)
        slow = build_interactions(log.events(), cfg, reference=T0)
    assert fast.data_hash == slow.data_hash and fast.reference_us == slow.reference_us
