"""Events that are believed: time windows, the refresh's clock, identities in shop-wide counts, purchases apart."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from threadpoolctl import threadpool_limits

from recommender.behaviour.fit import fit_behaviour
from recommender.config import CollaborativeSettings
from recommender.events.backend import SqliteEventLog
from recommender.events.log import Event, EventRejected, parse_event
from recommender.events.trust import client_network, identity, origin_of, time_window
from recommender.trust_settings import EventTimeSettings

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
CFG = CollaborativeSettings(factors=4, iterations=2, threads=1)


@pytest.fixture(autouse=True)
def _one_blas_thread():  # type: ignore[no-untyped-def]
    with threadpool_limits(1, "blas"):  # implicit's ALS parallelises itself
        yield


def row(timestamp: str) -> dict[str, str]:
    return {"user_id": "u", "product_id": "p1", "event": "view", "timestamp": timestamp}


@pytest.mark.parametrize(("timestamp", "reason"), [
    ("9999-01-01T00:00:00Z", "in the future"), ("2026-06-01T12:10:00Z", "in the future"),
    ("1970-01-01T00:00:00Z", "before 1995"), ("0001-01-01T00:00:00Z", "before 1995")])
def test_times_outside_the_window_are_rejected_with_a_reason(timestamp: str, reason: str) -> None:
    with pytest.raises(EventRejected) as info:
        parse_event(row(timestamp), window=time_window(EventTimeSettings(), NOW))
    assert info.value.field == "timestamp" and reason in info.value.reason


def test_the_window_allows_a_small_skew_and_browsers_only_the_last_day() -> None:
    window = time_window(EventTimeSettings(), NOW)
    assert parse_event(row("2026-06-01T12:04:00Z"), window=window).timestamp == NOW + timedelta(minutes=4)
    assert parse_event(row("2024-01-01T00:00:00Z"), window=window)  # a server import of old history is fine
    browser = time_window(EventTimeSettings(), NOW, browser=True)
    with pytest.raises(EventRejected, match="before 2026-05-31"):
        parse_event(row("2026-05-30T12:00:00Z"), window=browser)


def test_an_import_reports_file_line_and_reason_for_untrusted_times(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text("user_id,product_id,event,timestamp\nu,p1,view,2026-05-01T00:00:00Z\n"
                    "u,p1,view,9999-12-31T00:00:00Z\nu,p1,view,1970-01-01T00:00:00Z\n", encoding="utf-8")
    with SqliteEventLog(tmp_path / "log.sqlite3") as log:
        summary = log.import_file(path, {"p1"}, window=time_window(EventTimeSettings(), NOW))
    assert summary.imported == 1
    assert [(e.file, e.line, e.field) for e in summary.errors] == [("events.csv", 3, "timestamp"),
                                                                   ("events.csv", 4, "timestamp")]


def _views(users: list[str], product: str, day: datetime, trust: str = "server", origin: str = "",
           anchor: str | None = None) -> list[Event]:
    out = []
    for i, user in enumerate(users):
        t = day + timedelta(minutes=i)
        if anchor:
            out.append(Event(user, anchor, "view", t, f"{user}-s", trust=trust, origin=origin))
        out.append(Event(user, product, "view", t + timedelta(seconds=5), f"{user}-s", trust=trust, origin=origin))
    return out


def _shop() -> list[Event]:
    """Real shoppers: 'best' is viewed by 40 of them (with 'anchor' by 30), the rest by fewer."""
    day = NOW - timedelta(days=3)
    events = _views([f"real{i}" for i in range(40)], "best", day, anchor="anchor")
    events += _views([f"real{i}" for i in range(20)], "second", day + timedelta(hours=2))
    return events


def test_fabricated_ids_behind_one_address_cannot_buy_the_top_of_popularity_or_cooccurrence() -> None:
    origin = origin_of(client_network("203.0.113.9"), "k" * 40)
    fake = _views([f"fake{i}" for i in range(110)], "target", NOW - timedelta(days=1), trust="anonymous",
                  origin=origin, anchor="anchor")
    behaviour = fit_behaviour(_shop() + fake, CFG, now=NOW)
    pop, recent = behaviour.popularity, behaviour.recent_popularity
    assert pop["target"] == recent["target"] == 1.0 < pop["second"] < pop["best"]  # one network, one shopper
    co = behaviour.cooccurrence.co_occurring("anchor", 2)
    assert co[0].product_id == "best" and behaviour.cooccurrence.count("anchor", "target") == 1
    # the same 110 ids sent with the server key (the shop vouches for them) do count: trust is per event
    vouched = fit_behaviour(_shop() + [Event(e.user_id, e.product_id, e.event, e.timestamp, e.session_id)
                                       for e in fake], CFG, now=NOW)
    assert vouched.popularity["target"] == 110 > vouched.popularity["best"]


def test_identities_are_users_when_trusted_and_networks_otherwise() -> None:
    assert identity("u1", "server", "") == "u1" and identity("u1", "shopper", "abc") == "net:abc"
    assert client_network("2001:db8:1:2:3:4:5:6") == client_network("2001:db8:1:2:ffff::1") == "2001:db8:1:2::/64"
    assert client_network("::ffff:192.0.2.7") == "192.0.2.7" and client_network("192.0.2.7") == "192.0.2.7"


def test_recent_and_decay_follow_the_clock_not_a_future_event() -> None:
    events = [*_shop(), Event("late", "second", "view", NOW + timedelta(days=3650), "late-s")]
    behaviour = fit_behaviour(events, CFG, now=NOW)
    # measured from the newest event (as before), the window would hold only the future one
    assert behaviour.recent_popularity["best"] == 40 and behaviour.recent_popularity["second"] >= 20
    later = fit_behaviour(_shop(), CFG, now=NOW + timedelta(days=60))  # the shop's clock moved on
    assert later.recent_popularity == {}


def test_a_flood_of_views_does_not_evict_purchases(tmp_path: Path) -> None:
    day = NOW - timedelta(days=2)
    with SqliteEventLog(tmp_path / "log.sqlite3") as log:
        log.append([Event("u", "bought", "purchase", day, "s")])
        log.append(Event("u", f"v{i}", "view", day + timedelta(seconds=i + 1), "s") for i in range(300))
        assert "bought" not in {e.product_id for e in log.user_history("u", limit=200)}
        assert [e.product_id for e in log.user_purchases("u", limit=200)] == ["bought"]


def test_a_log_made_before_trust_levels_opens_and_counts_its_events_as_trusted(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE events (event_key TEXT PRIMARY KEY, user_id TEXT NOT NULL, product_id TEXT NOT "
                   "NULL, event TEXT NOT NULL, ts_us BIGINT NOT NULL, session_id TEXT NOT NULL)")
        db.execute("INSERT INTO events VALUES ('k1', 'u', 'p', 'view', 1, 's')")
    db.close()
    with SqliteEventLog(path) as log:
        assert [(e.user_id, e.trust, e.origin) for e in log.events()] == [("u", "server", "")]
        log.append([Event("w", "p", "view", NOW, "s2", trust="shopper", origin="o1"),
                    Event("x", "p", "view", NOW, "s3", trust="shopper", origin="o1")])
        assert log.popularity() == {"p": {"view": 2}}  # u, and the one network behind w and x
