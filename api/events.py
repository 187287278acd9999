"""``POST /v1/events``: a batch of shopper events (``{"events": [...]}``) appended to the event log.

Each event is validated on its own (DATA.md: ``user_id, product_id, event, timestamp, session_id``;
``timestamp`` defaults to the server's now; ``product_id`` must be in the store). ``event`` is ``view``,
``cart``, ``purchase`` or ``click``: a click on a recommendation is stored as a ``view`` of the clicked
product (it is the shopper's intent to look at it; DATA.md has no click type). Responses:
``200`` every event valid · ``207`` some rejected (the valid ones are stored) · ``400`` none valid or the
body itself malformed · ``413`` more than ``ApiSettings.max_events_per_request`` events or an oversized body.
Rejections name ``index``, ``field`` and ``reason``; a timestamp outside the believed window (``event_time``) is
one. Who may write what (server key or shopper token): ``api.auth``. Idempotent: the log keys each event by
(user, product, event, timestamp), or by (user, ``event_id``) when the client sends one, so a retried batch
stores nothing twice (``duplicates`` counts them); an event without a timestamp needs its ``event_id`` for that,
since each delivery gets the server's time.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, jsonify

from api.auth import admit_token_events, origin, require_writer, writer
from api.errors import ApiError
from api.metrics import metrics
from api.models import EventBatch
from api.responses import Error, EventResult
from api.schema import Operation, Reply, operation
from api.state import state
from recommender.events.log import Event, EventRejected, parse_event
from recommender.events.trust import TimeWindow, time_window

bp = Blueprint("events", __name__, url_prefix="/v1")

CLICK = "click"
_TYPES = f"view, cart, purchase, {CLICK}"
_KEYS = {"user_id", "product_id", "event", "timestamp", "session_id", "event_id"}


@bp.post("/events")
@operation(Operation(
    "Record shopper events (idempotent). A click is stored as a view of the clicked product.", json=EventBatch,
    secured=True, before=require_writer, responses={
        200: Reply("all events accepted", (EventResult,)),
        207: Reply("some rejected (index, field, reason); the valid ones are stored", (EventResult,)),
        400: Reply("no valid event, or a malformed body", (EventResult, Error))}))
def post_events(body: EventBatch) -> tuple[Response, int]:
    """Validate and store a batch of events."""
    who = writer()  # checked (401) before the body was read: require_writer; cached for the request
    raw = _batch(body.events)
    if who.token is not None:
        raw = admit_token_events(raw, who.token)
    now = datetime.now(UTC)
    events, rejected, kinds = validate(raw, time_window(state().settings.event_time, now, who.token is not None), now)
    if who.token is not None:  # a browser write: its trust level and client network travel with each event
        network = origin(who.token)
        events = [replace(e, trust=who.trust, origin=network) for e in events]
    st = state()
    if events:
        with st.events.open() as log:
            result = log.append(events)
        inserted, duplicates = result.inserted, result.duplicates
    else:
        inserted = duplicates = 0
    metrics().count_events(kinds)
    reply: dict[str, Any] = {"received": len(raw), "accepted": len(events), "inserted": inserted,
                            "duplicates": duplicates, "rejected": rejected}
    if not events:
        first = rejected[0] if rejected else {"index": None, "field": "events", "reason": "no events"}
        field = f"events[{first['index']}].{first['field']}" if first["index"] is not None else "events"
        reply["error"] = {"code": "invalid_events", "message": f"no valid event: {first['reason']}", "field": field}
        return jsonify(reply), 400
    return jsonify(reply), 207 if rejected else 200


def _batch(events: list[Any]) -> list[Any]:
    limit = state().settings.api.max_events_per_request
    if len(events) > limit:
        raise ApiError(413, "too_large", f"at most {limit} events per request, got {len(events)}", "events")
    return list(events)


def validate(raw: list[Any], window: TimeWindow | None = None, now: datetime | None = None
             ) -> tuple[list[Event], list[dict[str, Any]], Counter[str]]:
    """Valid events (times inside ``window``), rejections (index, field, reason) and counts per incoming type."""
    rows: list[tuple[int, dict[str, Any]]] = []
    rejected: list[dict[str, Any]] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            rejected.append({"index": i, "field": "event", "reason": "each event must be a JSON object"})
            continue
        unknown = sorted(set(item) - _KEYS)
        if unknown:
            rejected.append({"index": i, "field": unknown[0], "reason": f"unknown field {unknown[0]!r}"})
            continue
        rows.append((i, item))
    wanted = [item["product_id"].strip() for _, item in rows if isinstance(item.get("product_id"), str)]
    known = set(state().recommendations().views(wanted))
    events: list[Event] = []
    kinds: Counter[str] = Counter()
    stamp = (now or datetime.now(UTC)).isoformat()
    for i, item in rows:
        kind = str(item.get("event") or "").strip().lower()
        row = {**item, "event": "view" if kind == CLICK else kind, "timestamp": item.get("timestamp") or stamp}
        try:
            events.append(parse_event(row, known, window))
            kinds[kind] += 1
        except EventRejected as exc:
            reason = exc.reason if exc.field != "event" else f"unknown event type (expected {_TYPES})"
            rejected.append({"index": i, "field": exc.field, "reason": reason})
    rejected.sort(key=lambda r: r["index"])
    return events, rejected, kinds
