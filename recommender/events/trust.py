"""How far an event is believed: its time window, and the identity it counts as in shop-wide statistics.

Time: an event is accepted only between a configured floor and the server's clock plus a small skew (a browser
event also no older than a day by default), so one event dated 9999 or 1970 cannot move every decay.
Identity: popularity and co-occurrence count *identities*, not raw user ids. A server-trusted event (server key,
file import) counts as its user; a browser event (shopper token) counts as its client network (``origin``, a keyed
hash of the IP's /32 or IPv6 /64), so a hundred ids made up behind one address weigh as one shopper.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from recommender.trust_settings import EventTimeSettings

SERVER = "server"  # the trust level of server-key writes and file imports (tokens.TRUST_SERVER)


@dataclass(frozen=True)
class TimeWindow:
    """Event times believed: ``earliest <= t <= latest`` (UTC)."""

    earliest: datetime
    latest: datetime

    def problem(self, ts: datetime) -> str | None:
        """Why ``ts`` is not believed, or None."""
        if ts < self.earliest:
            return f"before {self.earliest.isoformat()} (the earliest event time accepted)"
        if ts > self.latest:
            return f"in the future: after {self.latest.isoformat()} (the server's clock plus the allowed skew)"
        return None


def time_window(settings: EventTimeSettings, now: datetime | None = None, browser: bool = False) -> TimeWindow:
    """The window for events arriving at ``now`` (default: the wall clock); narrower for browser events."""
    now = now or datetime.now(UTC)
    earliest = datetime.fromisoformat(settings.earliest)
    earliest = earliest.replace(tzinfo=UTC) if earliest.tzinfo is None else earliest.astimezone(UTC)
    if browser:
        earliest = max(earliest, now - timedelta(seconds=settings.max_token_age_s))
    return TimeWindow(earliest, now + timedelta(seconds=settings.max_future_s))


def client_network(address: str, ipv6_prefix: int = 64) -> str:
    """The network a client address stands for: an IPv4 address itself, an IPv6 address its /``ipv6_prefix``."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/{ipv6_prefix}", strict=False))
    return str(ip)


def origin_of(network: str, secret: str) -> str:
    """A keyed hash of a client network: events can be grouped by it without storing the address."""
    return hmac.new(secret.encode("utf-8"), network.encode("utf-8"), hashlib.sha256).hexdigest()[:20]


def identity(user_id: str, trust: str, origin: str) -> str:
    """Who an event counts as in popularity and co-occurrence: its user when trusted, else its client network."""
    return user_id if trust == SERVER or not origin else f"net:{origin}"
