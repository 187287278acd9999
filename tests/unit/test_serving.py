"""The serving guards without a server: request completeness, client addresses, image slots, their settings."""

from __future__ import annotations

import base64
import io
import socket
import threading
from pathlib import Path

import pytest

from api.app import create_app
from api.gunicorn_errors import write_json_error
from api.image_slots import EXTENSION, ImageBusy, ImageSlots
from api.worker import MAX_HEAD_BYTES, RequestReader, client_address
from recommender.config import ServeSettings, Settings, load_settings
from recommender.errors import ConfigError

GET = b"GET /healthz HTTP/1.1\r\nHost: shop\r\n"
POST = b"POST /v1/search HTTP/1.1\r\nHost: shop\r\nContent-Length: 10\r\n\r\n"


@pytest.mark.parametrize(("data", "state"), [
    (GET, None),  # head not finished
    (GET + b"\r\n", 0),
    (POST + b"12345", None),  # body not finished
    (POST + b"1234567890", 0),
    (POST.replace(b"Content-Length: 10", b"content-length:10") + b"1234567890", 0),  # any case, no space
    (POST.replace(b"10", b"99999999"), 0),  # over the body limit: complete, the app answers 413 unread
    (POST.replace(b"10", b"-1"), 0),  # malformed: gunicorn's parser answers 400
    (b"POST /v1/events HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", None),
    (b"POST /v1/events HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 0),
    (GET + b"X-Pad: " + b"a" * MAX_HEAD_BYTES, 431),
])
def test_a_request_goes_to_a_thread_only_once_complete(data: bytes, state: int | None) -> None:
    assert RequestReader(max_body=1000).feed(data) == state
    byte_by_byte = RequestReader(max_body=1000)
    seen = [byte_by_byte.feed(data[i:i + 1]) for i in range(len(data))]
    decided = [(i, x) for i, x in enumerate(seen) if x is not None]
    assert (decided[0][1] if decided else None) == state
    if state == 0:
        assert decided[0][0] == len(data) - 1  # complete exactly at its last byte, not before


def test_the_client_address_is_the_peer_unless_a_trusted_proxy_forwards_one() -> None:
    head = GET + b"X-Forwarded-For: 203.0.113.7, 198.51.100.2\r\n\r\n"
    assert client_address(("127.0.0.9", 5000), head, ["127.0.0.1"]) == "127.0.0.9"  # not a trusted proxy
    assert client_address(("127.0.0.1", 5000), head, ["127.0.0.1"]) == "198.51.100.2"  # the hop it saw
    assert client_address(("127.0.0.1", 5000), GET + b"\r\n", ["*"]) == "127.0.0.1"  # nothing forwarded


def test_image_slots_admit_slots_plus_queue_and_refuse_the_rest() -> None:
    slots = ImageSlots(slots=1, queue=1, wait_s=0.2)
    release = threading.Event()
    entered = threading.Event()

    def hold() -> None:
        with slots.slot():
            entered.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    assert entered.wait(5)
    with pytest.raises(ImageBusy), slots.slot():  # the queue place waits 0.2 s, then gives up
        pass
    release.set()
    holder.join()
    with slots.slot():  # free again
        pass


def test_an_image_search_beyond_the_slots_is_a_json_503_with_retry_after(tmp_path: Path) -> None:
    serve = ServeSettings(image_slots=1, image_queue=0, image_wait_s=0.1)
    app = create_app(Settings(data_dir=tmp_path, serve=serve))
    client = app.test_client()
    photo = base64.b64encode(b"\x89PNG not really").decode()
    with app.extensions[EXTENSION].slot():  # the one slot is busy
        busy = client.post("/v1/search", json={"image_base64": photo})
        form = client.post("/v1/ask", data={"question": "shoes", "image": (io.BytesIO(b"x"), "a.png")},
                           content_type="multipart/form-data")
        text = client.post("/v1/search", json={"text": "jeans", "k": "ten"})  # no image: not held back
    for res in (busy, form):
        assert res.status_code == 503 and res.headers["Retry-After"] == "1", res.get_data(as_text=True)
        assert res.json is not None and res.json["error"] == {
            "code": "busy", "message": "image searches are at capacity; retry shortly", "field": "image"}
    assert text.status_code == 400
    assert client.post("/v1/ask", json={"image_base64": photo}).status_code == 422  # slot free: decoded, refused


def test_worker_errors_carry_extra_headers() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        write_json_error(ours, 429, "Too Many Requests", "slow down", {"Retry-After": "1"})
        head, _, body = theirs.recv(4096).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 429 Too Many Requests") and b"\r\nRetry-After: 1\r\n" in head
    assert body == b'{"error": {"code": "too_many_requests", "message": "slow down", "field": null}}'


@pytest.mark.parametrize("env", [{"RECSYS_SERVE__IMAGE_SLOTS": "0"}, {"RECSYS_SERVE__HEADER_TIMEOUT_S": "0"},
                                 {"RECSYS_SERVE__MAX_INFLIGHT_PER_IP": "-1"},
                                 {"RECSYS_SERVE__KEEPALIVE_REQUESTS": "-1"}])
def test_serve_settings_refuse_values_that_disable_a_guard(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="serve"):
        load_settings(env=env)


def test_a_worker_process_runs_blas_on_one_thread() -> None:
    """The WSGI entry point (what each gunicorn worker imports) limits numpy's BLAS to one thread: the workers are
    the parallelism, and BLAS threads would only wait for cores the other workers hold."""
    import json
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    probe = ("import json, api.wsgi; from threadpoolctl import threadpool_info; "
             "print(json.dumps([d['num_threads'] for d in threadpool_info() if d['user_api'] == 'blas']))")
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120,
                         check=True, cwd=Path(__file__).resolve().parents[2])
    threads = json.loads(out.stdout.strip().splitlines()[-1])
    assert threads and set(threads) == {1}
