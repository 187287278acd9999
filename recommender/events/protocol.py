"""The offline task: time split, then "given this product page (and the shopper's past), what else in the
session will they look at?". Every test session with ≥ 2 distinct products yields one task per product:
that product is the anchor, the session's other products are relevant, the shopper's training history is
the context. Slices: cold-start anchors (no training events) and returning vs new shoppers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from recommender.domain import RankQuery
from recommender.events.log import Event

SLICES = ("all", "cold_anchor", "warm_anchor", "returning_shopper", "new_shopper")


@dataclass(frozen=True)
class AnchorTask:
    """One evaluation query and its answer."""

    anchor_id: str
    relevant: frozenset[str]
    user_id: str
    session_id: str
    history: tuple[str, ...]  # the shopper's training products, most recent first
    purchased: frozenset[str]
    cold_anchor: bool
    returning: bool

    def query(self, k: int) -> RankQuery:
        """The RankQuery a product page would send for this task."""
        return RankQuery(self.anchor_id, self.user_id if self.returning else None, self.history,
                         self.purchased, k)

    def in_slice(self, name: str) -> bool:
        """Whether the task belongs to a named slice."""
        return {"all": True, "cold_anchor": self.cold_anchor, "warm_anchor": not self.cold_anchor,
                "returning_shopper": self.returning, "new_shopper": not self.returning}[name]


def time_split(events: Iterable[Event], split_at: datetime) -> tuple[list[Event], list[Event]]:
    """Events strictly before ``split_at`` train; the rest test."""
    train: list[Event] = []
    test: list[Event] = []
    for e in events:
        (train if e.timestamp < split_at else test).append(e)
    return train, test


def split_point(events: Sequence[Event], test_fraction: float = 0.2) -> datetime:
    """The timestamp that leaves about ``test_fraction`` of the events (by count) for testing."""
    if not events:
        raise ValueError("no events to split")
    stamps = sorted(e.timestamp for e in events)
    return stamps[min(len(stamps) - 1, int(len(stamps) * (1 - test_fraction)))]


def build_tasks(train: Sequence[Event], test: Sequence[Event], history_limit: int = 20) -> list[AnchorTask]:
    """All anchor tasks of the test sessions, in a stable order."""
    trained_items = {e.product_id for e in train}
    histories = _histories(train, history_limit)
    purchases: dict[str, set[str]] = defaultdict(set)
    for e in train:
        if e.event == "purchase":
            purchases[e.user_id].add(e.product_id)
    sessions: dict[tuple[str, str], list[str]] = defaultdict(list)
    for e in sorted(test, key=lambda e: (e.timestamp, e.session_id, e.product_id)):
        items = sessions[(e.user_id, e.session_id)]
        if e.product_id not in items:
            items.append(e.product_id)
    tasks = []
    for (user, session), items in sorted(sessions.items()):
        if len(items) < 2:
            continue
        for anchor in items:
            tasks.append(AnchorTask(anchor, frozenset(items) - {anchor}, user, session, histories.get(user, ()),
                                    frozenset(purchases.get(user, ())), anchor not in trained_items,
                                    user in histories))
    return tasks


def _histories(train: Sequence[Event], limit: int) -> dict[str, tuple[str, ...]]:
    by_user: dict[str, list[Event]] = defaultdict(list)
    for e in train:
        by_user[e.user_id].append(e)
    out = {}
    for user, events in by_user.items():
        recent = sorted(events, key=lambda e: e.timestamp, reverse=True)
        out[user] = tuple(dict.fromkeys(e.product_id for e in recent))[:limit]
    return out
