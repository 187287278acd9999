"""The per-worker warm-up: steps in order, a failing step retried (never raised), readiness says what is pending."""

from __future__ import annotations

from pathlib import Path

import pytest

import api.warmup
from api.app import create_app
from api.state import AppState
from api.warmup import Warmup
from recommender.config import Settings
from recommender.search.searcher import QueryEncoders


class Flaky:
    """A step that fails ``failures`` times, then succeeds."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError("weaviate down")


class CountingEncoder:
    """Records the batches it encodes."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def encode_batch(self, items: list[str]) -> list[list[float]]:
        self.batches.append(list(items))
        return [[1.0] for _ in items]


def test_steps_run_in_order_and_a_failing_step_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api.warmup, "RETRY_S", (0.0,))
    order: list[str] = []
    flaky = Flaky(failures=2)
    warmup = Warmup({"a": lambda: order.append("a"), "store": flaky, "b": lambda: order.append("b")}).start()
    assert warmup.wait(10)
    assert order == ["a", "b"] and flaky.calls == 3
    assert warmup.status() == {"warm": True, "loaded": ["a", "store", "b"], "pending": [], "error": None}


def test_warm_builds_and_encodes_once_and_is_not_a_cold_load() -> None:
    encoder = CountingEncoder()
    built: list[str] = []
    encoders = QueryEncoders(lambda: built.append("text") or encoder, lambda: encoder)  # type: ignore[arg-type,func-returns-value]
    encoders.warm("text", ["hello"])
    assert encoders.get("text") is encoder and built == ["text"] and encoder.batches == [["hello"]]
    assert encoders.loaded == ("text",) and encoders.cold_loads == []
    encoders.get("image")
    assert encoders.cold_loads == ["image"]


def test_readyz_is_503_warming_with_the_reason_until_the_warm_up_finished(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path))
    state: AppState = app.extensions["recsys"]
    state.warmup = Warmup({"text_encoder": lambda: None, "ask": lambda: None})  # not started: stepped by hand
    state.warmup._run_step("text_encoder", lambda: None)
    state.warmup.error = "ask: ConnectionError: weaviate down"
    resp = app.test_client().get("/readyz")
    body = resp.get_json()
    assert resp.status_code == 503 and body["status"] == "warming"
    assert body["error"]["code"] == "warming" and "ask" in body["error"]["message"]
    assert "weaviate down" in body["error"]["message"]
    assert body["warmup"]["loaded"] == ["text_encoder"] and body["warmup"]["pending"] == ["ask"]
