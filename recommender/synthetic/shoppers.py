"""The synthetic shoppers: styles, category affinities and complements drive sessions of views, carts and
purchases, written to events.csv in time order."""

from __future__ import annotations

import bisect
import csv
from array import array
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
from tqdm import tqdm

from recommender.synthetic.draws import Draws, cumsum, id_width
from recommender.synthetic.images import COLOR_NAMES, PATTERNS
from recommender.synthetic.products import Plan
from recommender.synthetic.vocabulary import (
    CATEGORIES,
    COMPLEMENTS,
    EVENT_COLUMNS,
    EVENT_TYPES,
    GENDERS,
    SPAN_DAYS,
    START,
    STYLES,
)

_ALL, _BY_COLOR, _BY_STYLE, _BY_PATTERN = range(4)
_HOUR_WEIGHTS = (1.0, 0.5, 0.3, 0.2, 0.2, 0.3, 0.6, 1.0, 1.5, 2.0, 2.2, 2.4,
                 2.6, 2.4, 2.2, 2.2, 2.4, 2.8, 3.2, 3.6, 3.6, 3.0, 2.2, 1.5)
_SESSION_SECONDS = 3600  # an upper bound on one session's length (10 events × < 4 min)


@dataclass(frozen=True)
class _Shopper:
    """A simulated shopper's tastes: looks (style, colour, pattern) and category affinity."""

    gender: str
    style: int
    color: int
    pattern: int
    affinity: list[float]  # cumulative weights over CATEGORIES (0 for the other gender / empty ones)


@dataclass(frozen=True)
class _World:
    """The plan plus the lookup tables the simulation samples from."""

    plan: Plan
    groups: dict[tuple[int, int, int], tuple[list[int], list[float]]]
    complement: dict[tuple[int, str], int]  # (category, shopper gender) → complement category
    partners: dict[str, list[tuple[int, ...]]]  # gender → per product, its "complete the look" products


def _groups(plan: Plan) -> dict[tuple[int, int, int], tuple[list[int], list[float]]]:
    """Products by (category, attribute kind, value), each with cumulative popularity for sampling."""
    members: dict[tuple[int, int, int], list[int]] = {}
    columns = (plan.color.tolist(), plan.style.tolist(), plan.pattern.tolist())
    for index, category in enumerate(plan.category.tolist()):
        members.setdefault((category, _ALL, 0), []).append(index)
        for kind, column in zip((_BY_COLOR, _BY_STYLE, _BY_PATTERN), columns, strict=True):
            members.setdefault((category, kind, column[index]), []).append(index)
    return {key: (items, cumsum(plan.popularity[items])) for key, items in members.items()}


def _complements(groups: dict) -> dict[tuple[int, str], int]:
    """For each category and shopper gender, the non-empty complement category (if any)."""
    table: dict[tuple[int, str], int] = {}
    for index, category in enumerate(CATEGORIES):
        wanted = COMPLEMENTS[category.product_type]
        for gender in GENDERS:
            for target, other in enumerate(CATEGORIES):
                fits = other.product_type == wanted and other.gender in (gender, "unisex")
                if fits and (target, _ALL, 0) in groups:
                    table[(index, gender)] = target
    return table


def _sample(groups: dict, key: tuple[int, int, int], category: int, draws: Draws) -> int:
    """A popularity-weighted product from a group (the whole category when the group is empty)."""
    items, cumulative = groups.get(key) or groups[(category, _ALL, 0)]
    return items[draws.weighted(cumulative)]


def _partners(plan: Plan, groups: dict, complement: dict, draws: Draws) -> dict[str, list[tuple[int, ...]]]:
    """Three "goes with" products per product and gender, from its complement category, same style first."""
    table: dict[str, list[tuple[int, ...]]] = {}
    for gender in GENDERS:
        rows: list[tuple[int, ...]] = []
        for category, style in zip(plan.category.tolist(), plan.style.tolist(), strict=True):
            target = complement.get((category, gender))
            if target is None or CATEGORIES[category].gender not in (gender, "unisex"):
                rows.append(())
                continue
            rows.append(tuple(_sample(groups, (target, _BY_STYLE, style), target, draws) for _ in range(3)))
        table[gender] = rows
    return table


def build_world(plan: Plan, rng: np.random.Generator) -> _World:
    """Index the plan for the simulation."""
    groups = _groups(plan)
    complement = _complements(groups)
    return _World(plan, groups, complement, _partners(plan, groups, complement, Draws(rng)))


def draw_shoppers(n_shoppers: int, world: _World, rng: np.random.Generator) -> list[_Shopper]:
    """Shoppers with a gender, a style (favourite colour and pattern) and peaked category affinities."""
    shoppers = []
    for _ in range(n_shoppers):
        gender = GENDERS[int(rng.random() < 0.55)]
        style_no = int(rng.integers(len(STYLES)))
        style = STYLES[style_no]
        color = style.colors[int(rng.integers(len(style.colors)))]
        pattern = style.patterns[int(rng.integers(len(style.patterns)))]
        weights = rng.dirichlet(np.full(len(CATEGORIES), 0.6))
        for index, category in enumerate(CATEGORIES):
            if category.gender not in (gender, "unisex") or (index, _ALL, 0) not in world.groups:
                weights[index] = 0.0
        if weights.sum() <= 0:  # a tiny catalog with nothing for this gender
            weights = np.array([float((i, _ALL, 0) in world.groups) for i in range(len(CATEGORIES))])
        shoppers.append(_Shopper(gender, style_no, COLOR_NAMES.index(color), PATTERNS.index(pattern),
                                 cumsum(weights)))
    return shoppers


# ------------------------------------------------------------------------------------------- sessions
def _pick(world: _World, category: int, look: tuple[int, int, int], draws: Draws) -> int:
    """A product of a category, often one sharing a look (colour, style or pattern) with ``look``."""
    r = draws.u()
    color, style, pattern = look
    if r < 0.40:
        key = (category, _BY_COLOR, color)
    elif r < 0.65:
        key = (category, _BY_STYLE, style)
    elif r < 0.80:
        key = (category, _BY_PATTERN, pattern)
    else:
        key = (category, _ALL, 0)
    return _sample(world.groups, key, category, draws)


def _look_of(plan: Plan, product: int) -> tuple[int, int, int]:
    """A product's (colour, style, pattern)."""
    return int(plan.color[product]), int(plan.style[product]), int(plan.pattern[product])


def _next_product(world: _World, shopper: _Shopper, current: int, draws: Draws) -> int:
    """Where a shopper goes next: a complement, a similar-looking item, a variant, or a new category."""
    plan, taste = world.plan, (shopper.color, shopper.style, shopper.pattern)
    category = int(plan.category[current])
    r = draws.u()
    if r < 0.38:
        partners = world.partners[shopper.gender][current]
        if partners and draws.chance(0.6):
            return draws.pick(partners)
        target = world.complement.get((category, shopper.gender))
        if target is not None:
            return _pick(world, target, taste, draws)
    elif r < 0.72:
        return _pick(world, category, _look_of(plan, current), draws)
    elif r < 0.78:
        design = plan.designs[int(plan.design[current])]
        if len(design.colors) > 1:
            return design.first + draws.index(len(design.colors))
    return _pick(world, draws.weighted(shopper.affinity), taste, draws)


def _cart_chance(plan: Plan, shopper: _Shopper, product: int) -> float:
    """How likely a viewed product goes to the cart: higher when it matches the shopper's looks."""
    if not plan.in_stock[product]:
        return 0.0
    same_color, same_style = plan.color[product] == shopper.color, plan.style[product] == shopper.style
    return 0.08 + 0.10 * float(same_color) + 0.08 * float(same_style)


def _session(world: _World, shopper: _Shopper, draws: Draws) -> list[tuple[int, int]]:
    """One visit of 2–10 events: (product, event type index) in order."""
    length = 2 + draws.index(9)
    taste = (shopper.color, shopper.style, shopper.pattern)
    current = _pick(world, draws.weighted(shopper.affinity), taste, draws)
    events, carted = [(current, 0)], []
    while len(events) < length:
        if current not in carted and draws.chance(_cart_chance(world.plan, shopper, current)):
            events.append((current, 1))
            carted.append(current)
            continue
        following = _next_product(world, shopper, current, draws)
        if following == current:
            following = _next_product(world, shopper, current, draws)
        current = following
        events.append((current, 0))
    for product in carted:
        if len(events) < 10 and draws.chance(0.5):
            events.append((product, 2))
    return events


def _session_start(busy: list[int], draws: Draws, hour_cum: list[float]) -> int:
    """A start second within the span, not overlapping the shopper's other sessions (``busy``, sorted)."""
    start = 0
    for _ in range(8):
        day, hour = draws.index(SPAN_DAYS), draws.weighted(hour_cum)
        start = day * 86400 + hour * 3600 + draws.index(3600)
        i = bisect.bisect_left(busy, start)
        clear_before = i == 0 or busy[i - 1] + _SESSION_SECONDS <= start
        if clear_before and (i == len(busy) or start + _SESSION_SECONDS <= busy[i]):
            break
    bisect.insort(busy, start)
    return start


@dataclass(frozen=True)
class _EventLog:
    """Simulated events as compact parallel arrays (unsorted)."""

    user: array
    product: array
    kind: array
    second: array
    session: array

    def append(self, user: int, product: int, kind: int, second: int, session: int) -> None:
        """Add one event."""
        self.user.append(user)
        self.product.append(product)
        self.kind.append(kind)
        self.second.append(second)
        self.session.append(session)


def simulate(world: _World, shoppers: list[_Shopper], n_events: int, rng: np.random.Generator,
              progress: bool) -> tuple[_EventLog, int]:
    """Sessions until ``n_events`` events: every shopper once, then by (skewed) activity."""
    draws = Draws(rng)
    activity = cumsum(rng.lognormal(0.0, 0.9, size=len(shoppers)))
    hour_cum = cumsum(_HOUR_WEIGHTS)
    busy: list[list[int]] = [[] for _ in shoppers]
    log = _EventLog(array("i"), array("i"), array("b"), array("q"), array("i"))
    sessions = 0
    with tqdm(total=n_events, unit="event", disable=not progress) as bar:
        while len(log.user) < n_events or sessions < len(shoppers):
            user = sessions if sessions < len(shoppers) else draws.weighted(activity)
            second = _session_start(busy[user], draws, hour_cum)
            for product, kind in _session(world, shoppers[user], draws):
                second += 5 + draws.index(40) if kind == 1 else 10 + draws.index(170)
                log.append(user, product, kind, second, sessions)
            bar.update(min(len(log.user), n_events) - bar.n)
            sessions += 1
    return log, sessions


def _timestamp(second: int) -> str:
    """ISO 8601 UTC with a Z, ``second`` seconds after START."""
    return (START + timedelta(seconds=second)).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_events(path: Path, log: _EventLog, n_products: int, n_shoppers: int, n_sessions: int) -> int:
    """Write events.csv sorted by timestamp (ties keep simulation order); return the row count."""
    seconds = np.frombuffer(log.second, dtype=np.int64)
    order = np.argsort(seconds, kind="stable").tolist()
    pid_w, uid_w, sid_w = id_width(n_products, 5), id_width(n_shoppers, 4), id_width(n_sessions, 6)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(EVENT_COLUMNS)
        for i in order:
            user, product, session = log.user[i] + 1, log.product[i] + 1, log.session[i] + 1
            writer.writerow((f"U{user:0{uid_w}d}", f"P{product:0{pid_w}d}", EVENT_TYPES[log.kind[i]],
                             _timestamp(log.second[i]), f"S{session:0{sid_w}d}"))
    return len(order)
