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
from recommender.events.log import Event
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
    sessions: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for e in sorted(events, key=lambda e: e.timestamp):
        sessions[_session(e)].append((e.product_id, e.event))
    model, cooc = fit_models(build_interactions(events, settings, reference=now), sessions.items(), settings)
    pop = {pid: float(len(users)) for pid, users in _identities_per_item(events).items()}
    since = now - timedelta(days=RECENT_DAYS)
    recent = [e for e in events if since < e.timestamp]  # the caller left out what is past its clock
    recent_pop = {pid: float(len(users)) for pid, users in _identities_per_item(recent).items()}
    return Behaviour(cooc, model, pop, len({e.user_id for e in events}), recent_pop)


def _session(e: Event) -> str:
    who = identity(e.user_id, e.trust, e.origin)
    return e.session_id if who == e.user_id else f"{who}:{e.timestamp.date().isoformat()}"


def _identities_per_item(events: Sequence[Event]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for e in events:
        out[e.product_id].add(identity(e.user_id, e.trust, e.origin))
    return out
