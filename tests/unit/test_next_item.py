"""The next-item protocol: batch metrics by hand, the leave-last-out split, the session gap rule."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from recommender.behaviour.fit import session_ids
from recommender.evaluation.metrics import hit_rate_from_ranks, ndcg_from_ranks, target_ranks
from recommender.evaluation.next_item import figures, history_mask, leave_last_out, rank_targets
from recommender.events.log import Event, default_session

T0 = datetime(2024, 1, 1, 12, tzinfo=UTC)


def event(user: str, item: str, hours: float, session: str | None = None) -> Event:
    ts = T0 + timedelta(hours=hours)
    return Event(user, item, "purchase", ts, session or default_session(user, ts))


def test_target_ranks_by_hand_with_exclusion_and_ties() -> None:
    scores = np.array([[0.9, 0.5, 0.7, 0.1],    # target 1: items 0 and 2 beat it → rank 2
                       [0.9, 0.5, 0.7, 0.1],    # same, but item 0 is history → rank 1
                       [0.3, 0.3, 0.3, 0.3]])   # a tie counts against the target → rank 3
    exclude = np.array([[False] * 4, [True, False, False, False], [False] * 4])
    ranks = target_ranks(scores, np.array([1, 1, 0]), exclude)
    assert ranks.tolist() == [2, 1, 3]


def test_target_is_never_excluded() -> None:
    ranks = target_ranks(np.array([[0.1, 0.9]]), np.array([0]), np.array([[True, False]]))
    assert ranks.tolist() == [1]


def test_hit_rate_and_ndcg_from_ranks_by_hand() -> None:
    ranks = np.array([0, 1, 4, 9, 10])
    assert hit_rate_from_ranks(ranks, 5) == pytest.approx(3 / 5)
    assert hit_rate_from_ranks(ranks, 10) == pytest.approx(4 / 5)
    expected10 = (1 + 1 / math.log2(3) + 1 / math.log2(6) + 1 / math.log2(11)) / 5
    assert ndcg_from_ranks(ranks, 10) == pytest.approx(expected10)
    assert ndcg_from_ranks(ranks, 1) == pytest.approx(1 / 5)
    assert hit_rate_from_ranks(np.array([], dtype=int), 10) == 0.0


def test_leave_last_out_holds_out_the_last_two_items_in_time_order() -> None:
    # u1's events arrive out of order; u2 has only two items (trained on, never evaluated)
    events = [event("u1", "c", 3), event("u1", "a", 1), event("u1", "b", 2), event("u1", "d", 4),
              event("u2", "a", 1), event("u2", "e", 2)]
    split = leave_last_out(events)
    index = {pid: split.items.index(pid) for pid in "abcde"}
    rows, inputs, targets = split.tasks("test")
    assert rows == [0] and inputs == [[index["a"], index["b"], index["c"]]] and targets.tolist() == [index["d"]]
    rows, inputs, targets = split.tasks("valid")
    assert inputs == [[index["a"], index["b"]]] and targets.tolist() == [index["c"]]
    assert [e.product_id for e in split.fit_events("test")] == ["a", "b", "c", "a", "e"]
    assert [e.product_id for e in split.fit_events("valid")] == ["a", "b", "a", "e"]


def test_rank_targets_in_batches_matches_one_batch() -> None:
    rng = np.random.default_rng(0)
    table = rng.random((7, 20))
    inputs = [[int(j) for j in rng.choice(20, 3, replace=False)] for _ in range(7)]
    targets = np.array([next(j for j in range(20) if j not in seq) for seq in inputs])

    def scorer(rows, batch):
        return table[list(rows)]

    whole = target_ranks(table, targets, history_mask(inputs, 20))
    batched = rank_targets(scorer, list(range(7)), inputs, targets, 20, batch=3)
    assert batched.tolist() == whole.tolist()
    assert figures(batched)["tasks"] == 7


def test_session_gap_rule_splits_on_idle_time_and_keeps_given_sessions() -> None:
    events = [event("u", "a", 0), event("u", "b", 30), event("u", "c", 100), event("u", "d", 101, session="s9")]
    assert session_ids(events, 0) == [e.session_id for e in events]
    gap = session_ids(events, 48)
    assert gap[0] == gap[1] != gap[2]  # 30 h idle stays, 70 h idle starts a new session
    assert gap[3] == "s9"
