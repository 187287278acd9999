"""Two API processes (real gunicorn, each its own port and data dir, as on two hosts) write concurrently to one
PostgreSQL event log: every batch is sent to both at once, so every event races its twin. Nothing is lost, nothing
is stored twice, and the two processes' answers add up exactly."""

from __future__ import annotations

import csv
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from api.app import create_app
from recommender.config import EventsSettings, Settings, WeaviateSettings
from recommender.events.backend import EventLogs
from recommender.events.log import parse_event
from recommender.store.ports import free_port
from recommender.trust_settings import AuthSettings
from tests.gunicorn_server import gunicorn
from tests.integration.test_warmup import call
from tests.recsys_data import trained_data_dir

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
BATCHES, PER_BATCH = 40, 25
KEY = "integration-server-key-0123456789abcdef"  # the shop's backend writes with the server key
SERVER = {"Authorization": f"Bearer {KEY}"}


def _env(weaviate: WeaviateSettings, events_url: str, data_dir: Path) -> dict[str, str]:
    return {"RECSYS_WEAVIATE__HOST": weaviate.host, "RECSYS_WEAVIATE__HTTP_PORT": str(weaviate.http_port),
            "RECSYS_WEAVIATE__GRPC_PORT": str(weaviate.grpc_port), "RECSYS_WEAVIATE__COLLECTION": weaviate.collection,
            "RECSYS_DATA_DIR": str(data_dir), "RECSYS_EVENTS__URL": events_url, "RECSYS_AUTH__SERVER_KEY": KEY,
            "RECSYS_SERVE__MAX_INFLIGHT_PER_IP": "64"}  # one test client stands for the shop's backends


def _batches() -> list[list[dict[str, Any]]]:
    with (FIXTURES / "products.csv").open(newline="") as fh:
        products = [row["product_id"] for row in csv.DictReader(fh)][:60]
    out = []
    for b in range(BATCHES):
        batch = []
        for i in range(PER_BATCH):
            n = b * PER_BATCH + i
            event: dict[str, Any] = {"user_id": f"shopper-{n % 29}", "product_id": products[n % len(products)],
                                     "event": ("view", "cart", "purchase", "click")[n % 4]}
            if n % 5 == 0:  # no timestamp: the server's clock differs per process, the event_id identifies it
                event["event_id"] = f"evt-{n}"
            else:
                event["timestamp"] = f"2026-01-{1 + n % 28:02d}T10:{n % 60:02d}:{(n // 60) % 60:02d}Z"
            batch.append(event)
        out.append(batch)
    return out


def test_two_api_processes_share_one_postgres_log(fixtures_weaviate: WeaviateSettings, postgres_url: str,
                                                  tmp_path: Path) -> None:
    batches = _batches()
    with gunicorn(_env(fixtures_weaviate, postgres_url, tmp_path / "host-a"), tmp_path / "a.log") as a, \
            gunicorn(_env(fixtures_weaviate, postgres_url, tmp_path / "host-b"), tmp_path / "b.log") as b, \
            ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(call, f"{base}/v1/events", {"events": batch}, SERVER)
                   for batch in batches for base in (a, b)]
        answers = [f.result() for f in futures]
    assert all(status == 200 for status, _ in answers), [body for status, body in answers if status != 200][:3]
    sent = BATCHES * PER_BATCH
    assert sum(body["inserted"] for _, body in answers) == sent  # each event stored by exactly one of the twins
    assert sum(body["duplicates"] for _, body in answers) == sent
    # an event with a timestamp is keyed by its content, one without by (user, event_id): the keys are known here
    expected = {parse_event({**e, "event": "view" if e["event"] == "click" else e["event"],
                             "timestamp": e.get("timestamp", "2026-01-01T00:00:00Z")}).key
                for batch in batches for e in batch}
    with EventLogs(EventsSettings(url=postgres_url), tmp_path) as logs, logs.open() as log:
        stored = [row[0] for row in log.raw_rows()]
    assert len(stored) == sent and set(stored) == expected
    assert not list(tmp_path.glob("host-*/events.sqlite3"))  # neither process fell back to a local log


def test_an_unreachable_event_log_answers_503_and_the_pages_still_work(fixtures_weaviate: WeaviateSettings,
                                                                       tmp_path: Path) -> None:
    """PostgreSQL down: posting events and personal lists answer the API's JSON 503; anonymous pages of a trained
    shop (popularity from the published model, not the log) are unaffected."""
    trained_data_dir(tmp_path, FIXTURES)
    down = f"postgresql://postgres@127.0.0.1:{free_port('127.0.0.1')}/events"
    app = create_app(Settings(data_dir=tmp_path, weaviate=fixtures_weaviate,
                              events=EventsSettings(url=down, connect_timeout_s=1.0),
                              auth=AuthSettings(server_key=KEY)))
    try:
        client = app.test_client()
        posted = client.post("/v1/events", json={"events": [{"user_id": "u1", "product_id": "P00001",
                                                              "event": "view", "event_id": "e1"}]}, headers=SERVER)
        assert posted.status_code == 503 and posted.json["error"]["code"] == "event_log_unavailable", posted.json
        personal = client.get("/v1/products/P00001/recommendations?user_id=u1")
        assert personal.status_code == 503 and personal.json["error"]["code"] == "event_log_unavailable"
        assert client.get("/v1/products/P00001/recommendations").status_code == 200
    finally:
        app.extensions["recsys"].close()
