"""The evaluation runner: every method ranks every task, taking turns so no method is always first."""

from __future__ import annotations

from recommender.domain import RankedItem, RankQuery
from recommender.evaluation.runner import run_methods
from recommender.events.protocol import AnchorTask


class Recording:
    """A recommender that returns the anchor's successor and records the order it was called in."""

    def __init__(self, name: str, calls: list[str]) -> None:
        self.name = name
        self.calls = calls

    def rank(self, query: RankQuery) -> list[RankedItem]:
        self.calls.append(self.name)
        return [RankedItem(f"{query.anchor_id}-{self.name}", 1.0)]


def test_methods_take_turns_and_keep_their_own_lists() -> None:
    tasks = [AnchorTask(f"a{i}", frozenset({"x"}), "u", "s", (), frozenset(), False, False) for i in range(6)]
    calls: list[str] = []
    methods = {name: Recording(name, calls) for name in ("lr", "trees", "text")}
    ev = run_methods(methods, tasks, 10, progress=False)
    assert ev.lists["trees"] == [[f"a{i}-trees"] for i in range(6)]
    assert all(len(ev.seconds[m]) == 6 for m in methods)
    firsts = [calls[i * 3] for i in range(6)]
    assert sorted(firsts) == ["lr", "lr", "text", "text", "trees", "trees"]  # each goes first equally often
