"""The refresh's tune stage (opt-in): `recsys tune` re-run on the event log when its recorded choice is older than
``refresh.retune_days`` (Gorse-style periodic re-tuning), so a shop serves measured settings without a manual step.

The search is `recsys tune`'s (``tuning.search``) on the log's next-item validation split, where each shopper's
products count once (first visit, strongest event type), so the target is always a product they had not seen.
Settings given explicitly (TOML, environment, flags) are not searched, and neither is ``factors``: the store's
``behavior`` vectors have a fixed length, which only a rebuild changes (`recsys tune` may still choose it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

from recommender.config import Settings
from recommender.evaluation.next_item import leave_last_out
from recommender.events.log import EVENT_LEVEL, Event
from recommender.tuning.search import GRID, tune
from recommender.tuning.store import save_tuned, tuned_at

FIXED_IN_REFRESH = ("factors",)


@dataclass(frozen=True)
class TuneStage:
    """What the refresh's tune stage did (recorded in the release as ``tune``)."""

    ran: bool
    reason: str
    version: str | None = None  # the tuned version in effect after the stage
    chosen: dict[str, Any] | None = None
    score: float | None = None  # the choice's for_you NDCG@10 on the validation items
    baseline: float | None = None  # plain implicit ALS's, on the same shoppers
    shoppers: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return asdict(self)


def first_visits(events: Iterable[Event]) -> list[Event]:
    """One event per (shopper, product): at its first time, carrying the strongest event type seen."""
    first: dict[tuple[str, str], Event] = {}
    for e in sorted(events, key=lambda e: e.timestamp):
        key = (e.user_id, e.product_id)
        seen = first.get(key)
        if seen is None:
            first[key] = e
        elif EVENT_LEVEL.get(e.event, 0) > EVENT_LEVEL.get(seen.event, 0):
            first[key] = replace(seen, event=e.event)
    return list(first.values())


def retune_if_due(events: Sequence[Event], settings: Settings, progress: bool = True,
                  now: datetime | None = None) -> tuple[Settings, TuneStage]:
    """Tune when the recorded choice is missing or older than ``refresh.retune_days``; the settings to refresh with
    (the new choice, explicit settings kept) and what happened."""
    r, data_dir = settings.refresh, settings.data_dir
    recorded = tuned_at(data_dir)
    version = recorded[0] if recorded else None
    if r.retune_days <= 0:
        return settings, TuneStage(False, "off (refresh.retune_days = 0)", version)
    if recorded is not None:
        age = ((now or datetime.now(UTC)) - recorded[1]).total_seconds() / 86400
        if age < r.retune_days:
            return settings, TuneStage(False, f"tuned {age:.1f} days ago (< refresh.retune_days "
                                              f"{r.retune_days:g}): its choice is reused", version)
    grid = {k: v for k, v in GRID.items()
            if k not in FIXED_IN_REFRESH and f"collaborative.{k}" not in settings.explicit}
    split = leave_last_out(first_visits(events))
    shoppers = len(split.tasks("valid")[0])
    if not grid or shoppers < r.min_gate_tasks:
        why = "every tuned setting is set explicitly" if not grid else \
            f"{shoppers} shoppers with three products (< refresh.min_gate_tasks {r.min_gate_tasks})"
        return settings, TuneStage(False, f"not tuned: {why}", version, shoppers=shoppers)
    cfg = settings.collaborative
    result = tune(split, cfg, grid, r.tune_max_tasks, progress)
    kept = {k: getattr(cfg, k) for k in FIXED_IN_REFRESH}  # recorded too, so they survive as the new defaults
    result = replace(result, chosen={**kept, **result.chosen})
    source = {"refresh": True, "events": len(events), "shoppers": shoppers, "stage": "valid",
              "not_searched": sorted(set(GRID) - set(grid))}
    version = save_tuned(data_dir, result, source)
    searched = {k: v for k, v in result.chosen.items() if k in grid}
    stage = TuneStage(True, f"tuned on {result.users} of {shoppers} shoppers' validation items", version,
                      searched, result.score, result.baseline.get("ndcg@10"), shoppers, round(result.seconds, 2))
    return replace(settings, collaborative=replace(cfg, **searched)), stage
