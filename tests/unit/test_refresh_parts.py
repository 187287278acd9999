"""The refresh's pure parts: the quality gate, change detection, digests, the metric name and the OS lock."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from recommender.catalog.fingerprints import Fingerprints
from recommender.errors import RecommenderError
from recommender.events.log import Event
from recommender.refresh.stages import (
    RefreshLocked,
    _metric_k,
    changed_products,
    events_digest,
    fingerprint_digest,
    gate_decision,
    refresh_lock,
    trees_win,
)

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
EVENTS = [
    Event("u1", "p1", "view", T0, "s1"),
    Event("u1", "p2", "cart", T0 + timedelta(minutes=1), "s1"),
    Event("u2", "p1", "purchase", T0 + timedelta(hours=2), "s2"),
]


# ------------------------------------------------------------------------------------------------ gate
def test_gate_publishes_when_candidate_is_within_tolerance() -> None:
    """Candidate above the floor (served × (1 − tolerance)) is published; the reason gives the figures."""
    d = gate_decision(0.4950, 0.5000, "ndcg@10", 0.02, tasks=120, min_tasks=20)
    assert d.publish is True
    assert d.candidate == 0.4950 and d.current == 0.5000
    assert d.reason.startswith("published:")
    for figure in ("ndcg@10", "0.4950", "0.4900", "0.5000", "2%", "120 holdout tasks"):
        assert figure in d.reason


def test_gate_publishes_a_better_candidate() -> None:
    """A candidate better than the served model is published."""
    assert gate_decision(0.6, 0.5, "recall@20", 0.0, tasks=50, min_tasks=20).publish is True


def test_gate_refuses_below_floor() -> None:
    """Candidate under the floor is not published; the reason says so with candidate, floor, served and tasks."""
    d = gate_decision(0.4800, 0.5000, "ndcg@10", 0.02, tasks=120, min_tasks=20)
    assert d.publish is False
    assert d.candidate == 0.4800 and d.current == 0.5000
    assert d.reason.startswith("not published:")
    for figure in ("ndcg@10", "0.4800 < 0.4900", "0.5000", "2%", "120 holdout tasks"):
        assert figure in d.reason


def test_gate_boundary_exactly_at_floor_publishes() -> None:
    """candidate == served × (1 − tolerance) publishes (the comparison is ≥)."""
    current, tolerance = 0.5, 0.1
    floor = current * (1 - tolerance)
    assert gate_decision(floor, current, "ndcg@10", tolerance, tasks=100, min_tasks=20).publish is True
    below = floor - 1e-9
    assert gate_decision(below, current, "ndcg@10", tolerance, tasks=100, min_tasks=20).publish is False


def test_gate_zero_tolerance_requires_no_regression() -> None:
    """With tolerance 0 any drop is refused, equal is published."""
    assert gate_decision(0.5, 0.5, "mrr", 0.0, tasks=30, min_tasks=20).publish is True
    assert gate_decision(0.4999, 0.5, "mrr", 0.0, tasks=30, min_tasks=20).publish is False


def test_gate_without_served_model_publishes() -> None:
    """No model served yet: publish, naming the candidate's figure."""
    d = gate_decision(0.3210, None, "hit_rate@10", 0.02, tasks=100, min_tasks=20)
    assert d.publish is True
    assert d.current is None and d.candidate == 0.3210
    assert "no model served" in d.reason and "hit_rate@10 0.3210" in d.reason


def test_gate_with_too_few_tasks_publishes_saying_why() -> None:
    """Fewer holdout tasks than min_tasks: published without comparison, even if the candidate is far worse."""
    d = gate_decision(0.01, 0.9, "ndcg@10", 0.02, tasks=5, min_tasks=20)
    assert d.publish is True
    assert "without a comparison" in d.reason
    assert "5 holdout tasks" in d.reason and "20" in d.reason


def test_gate_one_task_short_of_minimum_vs_exactly_minimum() -> None:
    """tasks == min_tasks is enough to compare (and so to refuse); one fewer is not."""
    assert gate_decision(0.1, 0.9, "ndcg@10", 0.02, tasks=19, min_tasks=20).publish is True
    assert gate_decision(0.1, 0.9, "ndcg@10", 0.02, tasks=20, min_tasks=20).publish is False


def test_gate_missing_candidate_figure_does_not_misstate_task_count() -> None:
    """With enough tasks but no candidate figure, the reason must not claim there were too few tasks."""
    d = gate_decision(None, 0.5, "ndcg@10", 0.02, tasks=100, min_tasks=20)
    assert "(< 20)" not in d.reason


def test_gate_reason_states_fractional_tolerance() -> None:
    """A tolerance of half a percent appears as such in the reason, matching the floor it printed."""
    d = gate_decision(0.4980, 0.5000, "ndcg@10", 0.005, tasks=100, min_tasks=20)
    assert "0.4975" in d.reason  # the floor is right...
    assert "0.5%" in d.reason  # ...and so should be the tolerance shown next to it


def test_a_path_ranks_with_its_trees_only_when_they_score_at_least_the_logistic_fusion() -> None:
    """Within one candidate the better model ranks: trees 2% below the logistic fusion (inside the publish
    tolerance) still lose; a tie keeps the trees."""
    assert trees_win(0.2240, 0.2240) and trees_win(0.30, 0.22)
    assert not trees_win(0.2196, 0.2240) and not trees_win(0.176, 0.224)


# ------------------------------------------------------------------------------------------- changes
def test_changed_products_classifies_new_changed_removed_unchanged() -> None:
    """New and changed ids are in the first set, removed in the second, unchanged in neither."""
    before = {"same": "d1", "changed": "d2", "removed": "d3"}
    now = {"same": "d1", "changed": "d2x", "new": "d4"}
    changed, removed = changed_products(before, now)
    assert changed == {"changed", "new"}
    assert removed == {"removed"}


def test_changed_products_edge_cases() -> None:
    """Empty before: everything is new; equal maps: nothing changed; empty now: everything removed."""
    now = {"a": "1", "b": "2"}
    assert changed_products({}, now) == ({"a", "b"}, set())
    assert changed_products(now, dict(now)) == (set(), set())
    assert changed_products(now, {}) == (set(), {"a", "b"})


# ------------------------------------------------------------------------------------------- digests
def test_events_digest_is_order_independent() -> None:
    """The digest depends on the set of events, not the order they are listed in."""
    assert events_digest(EVENTS) == events_digest(list(reversed(EVENTS)))
    assert events_digest(EVENTS) == events_digest([EVENTS[1], EVENTS[2], EVENTS[0]])


def test_events_digest_changes_when_an_event_is_added_or_differs() -> None:
    """Adding an event, or changing user/product/type/time of one, changes the digest."""
    base = events_digest(EVENTS)
    assert events_digest([*EVENTS, Event("u3", "p3", "view", T0, "s3")]) != base
    assert events_digest(EVENTS[:-1]) != base
    first = EVENTS[0]
    for changed in (replace(first, user_id="u9"), replace(first, product_id="p9"), replace(first, event="cart"),
                    replace(first, timestamp=T0 + timedelta(microseconds=1))):
        assert events_digest([changed, *EVENTS[1:]]) != base
    assert events_digest([]) != base


def test_fingerprint_digest_changes_with_each_field() -> None:
    """Changing text, image or properties fingerprint each changes the digest; equal inputs give equal digests."""
    fp = Fingerprints("text-fp", "image-fp", "props-fp")
    base = fingerprint_digest(fp)
    assert fingerprint_digest(Fingerprints("text-fp", "image-fp", "props-fp")) == base
    assert len(base) == 16
    names = [f.name for f in fields(Fingerprints)]
    assert names == ["text", "image", "properties"]
    digests = {fingerprint_digest(replace(fp, **{name: getattr(fp, name) + "x"})) for name in names}
    assert len(digests) == len(names)
    assert base not in digests
    # moving a value between fields is a different product
    assert fingerprint_digest(Fingerprints("image-fp", "text-fp", "props-fp")) != base
    assert fingerprint_digest(Fingerprints("text-fp", "", "props-fp")) != base


# ------------------------------------------------------------------------------------------- metric
@pytest.mark.parametrize(("metric", "k"), [("ndcg@10", 10), ("hit_rate@5", 5), ("recall@20", 20), ("mrr", 10)])
def test_metric_k_accepts_known_metrics(metric: str, k: int) -> None:
    """Known metric names give their cutoff (mrr: the default 10)."""
    assert _metric_k(metric) == k


@pytest.mark.parametrize("metric", ["precision@10", "ndcg@ten", "NDCG@10", "", "coverage@10", "ndcg@-1"])
def test_metric_k_rejects_unknown_metric(metric: str) -> None:
    """Anything else is a RecommenderError naming the setting."""
    with pytest.raises(RecommenderError, match=r"refresh\.metric"):
        _metric_k(metric)


@pytest.mark.parametrize("metric", ["ndcg", "recall", "hit_rate", "mrr@5"])
def test_metric_k_rejects_names_the_evaluation_does_not_report(metric: str) -> None:
    """Only ndcg@K, hit_rate@K, recall@K and mrr (the keys aggregate() produces) are valid."""
    with pytest.raises(RecommenderError):
        _metric_k(metric)


# ---------------------------------------------------------------------------------------------- lock
def test_refresh_lock_excludes_a_second_holder_and_is_released(tmp_path: Path) -> None:
    """While held, a second refresh_lock raises RefreshLocked naming the holder pid; after release it can be taken."""
    lock = tmp_path / "sub" / "refresh.lock"
    with refresh_lock(lock):
        assert lock.read_text(encoding="utf-8") == str(os.getpid())
        with pytest.raises(RefreshLocked) as err, refresh_lock(lock):
            pytest.fail("second lock was granted while the first is held")
        assert f"pid {os.getpid()}" in str(err.value)
        assert str(lock) in str(err.value)
        # the failed attempt did not release or clobber the first holder's lock
        with pytest.raises(RefreshLocked), refresh_lock(lock):
            pytest.fail("lock was lost after a failed attempt")
    with refresh_lock(lock):
        assert lock.read_text(encoding="utf-8") == str(os.getpid())


def test_refresh_lock_released_when_block_raises(tmp_path: Path) -> None:
    """An exception in the block releases the lock."""
    lock = tmp_path / "refresh.lock"
    with pytest.raises(RuntimeError), refresh_lock(lock):
        raise RuntimeError("refresh failed")
    with refresh_lock(lock):
        assert lock.read_text(encoding="utf-8") == str(os.getpid())


_CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from recommender.refresh.stages import refresh_lock
    with refresh_lock(Path(sys.argv[1])):
        print("holding", flush=True)
        time.sleep(60)
""")


def test_lock_held_by_child_blocks_parent_until_child_is_killed(tmp_path: Path) -> None:
    """A child holding the lock blocks the parent (message names the child pid); SIGKILL leaves no stale lock."""
    lock = tmp_path / "refresh.lock"
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(lock)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        ready, _, _ = select.select([child.stdout], [], [], 15)
        assert ready, "child did not take the lock in time"
        line = child.stdout.readline()
        assert line.strip() == "holding", f"child failed: {line!r} {child.stderr.read() if child.stderr else ''}"

        with pytest.raises(RefreshLocked) as err, refresh_lock(lock):
            pytest.fail("parent took a lock the child holds")
        assert f"pid {child.pid}" in str(err.value)

        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=10) == -signal.SIGKILL
        with refresh_lock(lock):
            assert lock.read_text(encoding="utf-8") == str(os.getpid())
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()


def test_only_model_settings_refit() -> None:
    """A cache size or the batch's LLM sentences change no model: a refresh with them changed re-ranks nothing; every
    other refresh setting (and the ALS ones) is part of the params a release is compared by."""
    from recommender.config import RefreshSettings, Settings
    from recommender.refresh.pipeline import NOT_MODEL_PARAMS, refresh_params

    base = Settings()
    same = {"item_cache": 10, "explain_items": 1, "retune_days": 3.0, "tune_max_tasks": 7}
    assert set(same) == set(NOT_MODEL_PARAMS)
    changed = replace(base, refresh=replace(base.refresh, **same))
    assert refresh_params(changed, None) == refresh_params(base, None)
    for f in fields(RefreshSettings):
        if f.name in NOT_MODEL_PARAMS:
            continue
        value = getattr(base.refresh, f.name)
        other = value + 1 if isinstance(value, int | float) else f"{value}x"
        moved = replace(base, refresh=replace(base.refresh, **{f.name: other}))
        assert refresh_params(moved, None) != refresh_params(base, None), f.name
    als = replace(base, collaborative=replace(base.collaborative, factors=base.collaborative.factors + 1))
    assert refresh_params(als, None) != refresh_params(base, None)
    assert refresh_params(base, "{}") != refresh_params(base, None)
    deeper = replace(base, ranking=replace(base.ranking, per_source=base.ranking.per_source + 10))
    assert refresh_params(deeper, None) != refresh_params(base, None)
