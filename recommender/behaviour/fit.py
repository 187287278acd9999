"""The one behaviour fitting path: interactions → ALS, sessions → co-occurrence, events → popularity.

``fit_models`` is where ALS and co-occurrence are fitted, for ``recsys train`` (from the event log's rows, the
co-occurrence over the ALS item ids), the refresh and the evaluation (``fit_behaviour``, from events).
Callers limit BLAS to one thread around it: implicit's ALS parallelises itself.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from recommender.behaviour.als import CollaborativeModel, fit_als
from recommender.behaviour.cooccurrence import CoOccurrence, build_cooccurrence
from recommender.config import CollaborativeSettings
from recommender.events.interactions import IdMap, Interactions, build_interactions
from recommender.events.log import Event, default_session
from recommender.events.trust import identity
from recommender.timing import StageTimer

RECENT_DAYS = 28


@dataclass(frozen=True)
class Behaviour:
    """Behaviour fitted on one set of events."""

    cooccurrence: CoOccurrence
    model: CollaborativeModel | None
    popularity: dict[str, float]
    users: int
    recent_popularity: dict[str, float] = field(default_factory=dict)


def fit_models(interactions: Interactions, sessions: Iterable[tuple[str, Sequence[tuple[str, str]]]],
               settings: CollaborativeSettings, *, items: IdMap | None = None, progress: bool = False,
               timer: StageTimer | None = None) -> tuple[CollaborativeModel | None, CoOccurrence]:
    """ALS on ``interactions`` (None without any) and co-occurrence of ``sessions`` (``items`` fixes its id map).

    ``timer`` records the ``als`` and ``cooccurrence`` stages.
    """
    timer = timer or StageTimer()
    with timer.stage("als"):
        model = fit_als(interactions, settings, progress=progress) if interactions.matrix.nnz else None
    with timer.stage("cooccurrence"):
        cooc = build_cooccurrence(sessions, items, settings.max_session_items)
    return model, cooc


def fit_behaviour(events: Sequence[Event], settings: CollaborativeSettings, *, now: datetime) -> Behaviour:
    """Co-occurrence, ALS and popularity (distinct identities per product; overall and in the ``RECENT_DAYS``
    before ``now``, the job's clock). Decay is measured from ``now`` too, never from the newest event.

    Shop-wide counts go by identity (``events.trust.identity``): a browser-written event counts as its client
    network, and its session as that network's day, so ids made up behind one address cannot buy a list's top.
    """
    sessions = session_items(sorted(events, key=lambda e: e.timestamp), settings.session_gap_hours)
    model, cooc = fit_models(build_interactions(events, settings, reference=now), sessions.items(), settings)
    pop = {pid: float(len(users)) for pid, users in _identities_per_item(events).items()}
    since = now - timedelta(days=RECENT_DAYS)
    recent = [e for e in events if since < e.timestamp]  # the caller left out what is past its clock
    recent_pop = {pid: float(len(users)) for pid, users in _identities_per_item(recent).items()}
    return Behaviour(cooc, model, pop, len({e.user_id for e in events}), recent_pop)


def session_items(events: Sequence[Event], gap_hours: float) -> dict[str, list[tuple[str, str]]]:
    """Per session (under the session rule, see ``session_ids``): its (product_id, event) pairs in time order."""
    sessions: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for e, session in zip(events, session_ids(events, gap_hours), strict=True):
        sessions[session].append((e.product_id, e.event))
    return sessions


def session_ids(events: Sequence[Event], gap_hours: float) -> list[str]:
    """Each event's session. A browser-written event's is its client network's day (``events.trust``); a trusted
    one keeps its own ``session_id``, except that with ``gap_hours > 0`` an event carrying DATA.md's default
    (user + day) gets the inactivity rule instead: a user's new session starts after ``gap_hours`` idle.
    ``events`` must be in time order."""
    gap_us = int(gap_hours * 3_600_000_000)
    last: dict[str, tuple[int, int]] = {}  # user → (last event time, session number)
    out = []
    for e in events:
        who = identity(e.user_id, e.trust, e.origin)
        if who != e.user_id:
            out.append(f"{who}:{e.timestamp.date().isoformat()}")
            continue
        if gap_hours <= 0 or e.session_id != default_session(e.user_id, e.timestamp):
            out.append(e.session_id)
            continue
        ts, n = last.get(e.user_id, (e.ts_us, 0))
        n = n + 1 if e.ts_us - ts > gap_us else n
        last[e.user_id] = (e.ts_us, n)
        out.append(f"{e.user_id}~gap{n}")
    return out


def _identities_per_item(events: Sequence[Event]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for e in events:
        out[e.product_id].add(identity(e.user_id, e.trust, e.origin))
    return out
