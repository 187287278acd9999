"""No cold request: under a real gunicorn (2 workers, the shipped config, warm-up on) the first search and the first
ask are answered by workers that loaded both encoders, the recommendation service and the ask vocabulary before
they accepted a connection. Asserted on what each worker reports loaded, never on wall-clock time."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from recommender.config import ServeSettings, WeaviateSettings
from recommender.store.ports import free_port
from tests.gunicorn_server import gunicorn
from tests.integration.test_search import IMAGE_SIZE

READY_S = 120.0
STEPS = ["text_encoder", "image_encoder", "recommendations", "ask"]


def test_first_search_and_ask_find_every_worker_warm(fixtures_weaviate: WeaviateSettings, tmp_path: Path) -> None:
    env = {"RECSYS_WEAVIATE__HOST": fixtures_weaviate.host,
           "RECSYS_WEAVIATE__HTTP_PORT": str(fixtures_weaviate.http_port),
           "RECSYS_WEAVIATE__GRPC_PORT": str(fixtures_weaviate.grpc_port),
           "RECSYS_WEAVIATE__COLLECTION": fixtures_weaviate.collection, "RECSYS_DATA_DIR": str(tmp_path / "data"),
           "RECSYS_IMAGE_ENCODER__IMAGE_SIZE": str(IMAGE_SIZE), "RECSYS_API__WARMUP": "true",
           "RECSYS_SERVE__MAX_INFLIGHT_PER_IP": "64"}  # the concurrent /readyz polls below come from one address
    with gunicorn(env, tmp_path / "gunicorn.log", workers=2) as base:
        deadline = time.monotonic() + READY_S
        while call(f"{base}/readyz")[0] != 200:
            assert time.monotonic() < deadline, (tmp_path / "gunicorn.log").read_text()[-3000:]
            time.sleep(0.2)
        status, body = call(f"{base}/v1/search", {"text": "yellow jeans", "k": 3})
        assert status == 200 and body["results"], body
        status, body = call(f"{base}/v1/ask", {"question": "blue jeans under 80"})
        assert status == 200, body
        workers = readiness_of_each_worker(base)
        log = (tmp_path / "gunicorn.log").read_text()
    assert len(workers) == 2, workers
    assert log.count("warm: text_encoder, image_encoder, recommendations, ask") == 2, log[-3000:]  # before serving
    for ready in workers.values():
        assert ready["status"] == "ready" and sorted(ready["encoders"]) == ["image", "text"]
        assert ready["cold_loads"] == []  # no request had to load an encoder
        assert ready["warmup"] == {"warm": True, "loaded": STEPS, "pending": [], "error": None}


def test_a_worker_whose_warm_up_fails_serves_and_says_why(tmp_path: Path) -> None:
    env = {"RECSYS_WEAVIATE__HOST": "127.0.0.1", "RECSYS_WEAVIATE__HTTP_PORT": str(free_port("127.0.0.1")),
           "RECSYS_WEAVIATE__GRPC_PORT": str(free_port("127.0.0.1")), "RECSYS_WEAVIATE__COLLECTION": "Nowhere",
           "RECSYS_DATA_DIR": str(tmp_path / "data"), "RECSYS_IMAGE_ENCODER__IMAGE_SIZE": str(IMAGE_SIZE),
           "RECSYS_API__WARMUP": "true"}
    with gunicorn(env, tmp_path / "gunicorn.log", workers=1) as base:  # up: the worker was not killed
        status, body = call(f"{base}/readyz")
        log = (tmp_path / "gunicorn.log").read_text()
    assert status == 503 and body["status"] == "warming" and body["error"]["code"] == "warming", body
    assert "ask" in body["error"]["message"] and body["warmup"]["pending"] == ["ask"], body  # no vocabulary saved
    assert body["warmup"]["loaded"] == ["text_encoder", "image_encoder", "recommendations"]
    assert "serves before its warm-up finished" in log


def call(url: str, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """(status, JSON body) of a GET, or of a JSON POST when ``body`` is given; HTTP errors included."""
    data = json.dumps(body).encode() if body is not None else None
    sent = {**({"Content-Type": "application/json"} if data else {}), **(headers or {})}
    req = urllib.request.Request(url, data=data, headers=sent)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def readiness_of_each_worker(base: str, workers: int = 2,
                             concurrency: int = ServeSettings().max_inflight_per_ip) -> dict[int, dict[str, Any]]:
    """``/readyz`` bodies by worker pid, asked until every worker answered (a worker still warming accepts no
    connection yet); concurrent calls, since sequential ones tend to reach one worker only (no more at once than
    one address may have in flight)."""
    seen: dict[int, dict[str, Any]] = {}
    deadline = time.monotonic() + READY_S
    with ThreadPoolExecutor(concurrency) as pool:
        while len(seen) < workers:
            assert time.monotonic() < deadline, f"only workers {sorted(seen)} answered"
            for status, body in pool.map(lambda _: call(f"{base}/readyz"), range(4 * concurrency)):
                assert status == 200, body
                seen[int(body["pid"])] = body
    return seen
