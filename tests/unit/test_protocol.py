"""The evaluation task on hand-made events."""

from __future__ import annotations

from datetime import UTC, datetime

from recommender.events.log import Event
from recommender.events.protocol import build_tasks, split_point, time_split


def ev(user: str, pid: str, day: int, kind: str = "view", session: str = "") -> Event:
    return Event(user, pid, kind, datetime(2024, 1, day, 12, tzinfo=UTC), session or f"{user}-{day}")


def test_time_split_and_split_point() -> None:
    events = [ev("u", f"p{i}", i + 1) for i in range(10)]
    cut = split_point(events, 0.2)
    train, test = time_split(events, cut)
    assert len(train) == 8 and len(test) == 2
    assert max(e.timestamp for e in train) < min(e.timestamp for e in test)


def test_tasks_one_per_anchor_with_the_rest_relevant() -> None:
    train = [ev("alice", "a", 1, "purchase"), ev("alice", "b", 2)]
    test = [ev("alice", "c", 10), ev("alice", "a", 10), ev("alice", "c", 10),  # duplicate c counts once
            ev("bob", "x", 11), ev("bob", "y", 11),
            ev("carol", "z", 12)]  # a one-product session yields no task
    tasks = build_tasks(train, test)
    by_anchor = {(t.user_id, t.anchor_id): t for t in tasks}
    assert set(by_anchor) == {("alice", "c"), ("alice", "a"), ("bob", "x"), ("bob", "y")}
    t = by_anchor[("alice", "c")]
    assert t.relevant == {"a"} and t.history == ("b", "a") and t.purchased == {"a"}
    assert t.returning and not by_anchor[("bob", "x")].returning
    assert t.cold_anchor and not by_anchor[("alice", "a")].cold_anchor  # c never seen in training, a was
    q = by_anchor[("bob", "x")].query(5)
    assert q.user_id is None and q.anchor_id == "x" and q.k == 5
    assert by_anchor[("alice", "a")].in_slice("warm_anchor") and t.in_slice("cold_anchor")
