"""The shared stage timer: accumulates per stage, counts a block that raises, rounds when asked."""

from __future__ import annotations

import pytest

from recommender.timing import StageTimer


def test_stages_accumulate_and_a_raising_block_still_counts() -> None:
    timer = StageTimer(digits=3)
    with timer.stage("a"):
        pass
    with pytest.raises(RuntimeError), timer.stage("b"):
        raise RuntimeError("boom")
    timer.add("a", 1.0)
    assert list(timer.seconds) == ["a", "b"] and timer.seconds["a"] >= 1.0 and timer.current == "b"
    assert timer.seconds["a"] == round(timer.seconds["a"], 3)


def test_the_timer_writes_into_a_given_dict() -> None:
    seconds: dict[str, float] = {}
    StageTimer(seconds).add("x", 0.5)
    assert seconds == {"x": 0.5}
