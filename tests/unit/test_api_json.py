"""Responses encoded by orjson are the bytes Flask's stdlib encoder gave, on values made to hit the differences."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import json
import math
import random
import uuid
from pathlib import Path

import numpy as np
import pytest
from flask import Flask, jsonify

from api.app import create_app
from api.jsonio import compact_json
from recommender.config import Settings

AWKWARD_TEXT = ['"', "\\", "\\\\", '\\"', "\x00", "\x1f", "\x7f", "\b\f\n\r\t", "é", "“quoted”", "\u2028", "😀",
                "\ud7ff", "\ue000", ":0.00001,", "[1e-7]", ",0.0000123}", "e-", "null", "plain", ""]


def _stdlib(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode("ascii")


def _float(r: random.Random) -> float:
    kind = r.random()
    if kind < 0.3:  # rounded as the bodies round, small ones included
        return round(r.choice([1, -1]) * r.random() * 10 ** r.uniform(-8, 1), r.choice([4, 5, 6]))
    if kind < 0.4:
        return r.choice([0.0, -0.0, 1e-4, 1e-5, 9.999e-5, 1e16, 1e22, 5e-324, 1.7976931348623157e308, 0.1])
    return r.choice([1, -1]) * r.random() * 10 ** r.uniform(-330, 308)


def _text(r: random.Random) -> str:
    return "".join(r.choice(AWKWARD_TEXT) for _ in range(r.randint(0, 4)))


def _value(r: random.Random, depth: int = 0) -> object:
    kind = r.randint(0, 9 if depth < 3 else 5)
    leaves = [lambda: _float(r), lambda: _text(r), lambda: r.randint(-2**63, 2**63 - 1), lambda: None,
              lambda: r.random() < 0.5, lambda: _float(r)]
    if kind < len(leaves):
        return leaves[kind]()
    if kind < 8:
        return {_text(r) + str(i): _value(r, depth + 1) for i in range(r.randint(0, 5))}
    return [_value(r, depth + 1) for _ in range(r.randint(0, 5))]


def test_compact_json_gives_the_stdlib_bytes_or_declines() -> None:
    r = random.Random(5)
    encoded = 0
    for _ in range(3000):
        obj = _value(r)
        got, want = compact_json(obj), _stdlib(obj)
        assert got == want or (got is None and b"\\\\" in want), obj  # declines only near an escaped backslash
        encoded += got is not None
    assert encoded > 2000


@pytest.mark.parametrize("value", [
    math.nan, math.inf, [1.0, -math.inf], {"a": {"b": math.nan}}, {1: "int key"}, 2**64, "lone \ud800",
    np.float64(0.5), datetime.date(2026, 1, 2), decimal.Decimal("1.5"), {"x": 0.00001, "y": "\\\\"}])
def test_what_orjson_would_write_otherwise_is_left_to_json(value: object) -> None:
    assert compact_json(value) is None


@pytest.fixture
def app(tmp_path: Path) -> Flask:
    return create_app(Settings(data_dir=tmp_path))


@dataclasses.dataclass
class _Point:
    x: float


@pytest.mark.parametrize("value", [
    {"text": "“quoted” 😀", "score": 1e-05, "signals": {"a": -0.00003, "b": 0.5}, "none": None},
    [datetime.datetime(2026, 1, 2, 3, 4, 5), decimal.Decimal("1.5"), _Point(0.25), np.float64(0.5), uuid.UUID(int=7)]])
def test_jsonify_sends_what_flasks_encoder_sent(app: Flask, value: object) -> None:
    with app.app_context():
        fast = jsonify(value)
        app.json.response = lambda *a, **k: type(app.json).__mro__[1].response(app.json, *a, **k)  # type: ignore
        slow = jsonify(value)
    assert fast.get_data() == slow.get_data() and fast.mimetype == slow.mimetype == "application/json"


@pytest.mark.parametrize("value", [math.nan, {"score": -math.inf, "id": None}])
def test_jsonify_refuses_nan_and_infinity(app: Flask, value: object) -> None:
    with app.app_context(), pytest.raises(ValueError):
        jsonify(value)
