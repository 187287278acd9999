"""The local Weaviate process manager against the real server binary."""

from __future__ import annotations

import json
import os
import signal
import socket
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from recommender.errors import WeaviateServerError
from recommender.store.ports import free_port, free_ports
from recommender.store.process import read_pidfile, stop_from_pidfile
from recommender.store.server import LocalWeaviate

pytestmark = pytest.mark.integration


def _server(binary: Path, root: Path, **kwargs: Any) -> LocalWeaviate:
    """A LocalWeaviate on fresh free ports with its data under ``root``."""
    http_port = kwargs.pop("http_port", None) or free_port()
    (grpc_port,) = free_ports(1, exclude=frozenset({http_port}))
    return LocalWeaviate(
        binary=binary,
        data_dir=root / "weaviate",
        host="127.0.0.1",
        http_port=http_port,
        grpc_port=grpc_port,
        startup_timeout_s=kwargs.pop("startup_timeout_s", 120.0),
        log_path=root / "weaviate.log",
        **kwargs,
    )


def _rest(method: str, url: str, body: dict[str, Any] | None = None) -> Any:
    """Plain JSON REST call with urllib."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read() or b"null")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_start_ready_stop_next_to_the_session_server(
    weaviate_binary: Path, weaviate_server: Any, tmp_path: Path
) -> None:
    server = _server(weaviate_binary, tmp_path)
    with server:
        assert server.is_ready()
        assert weaviate_server.server.is_ready(), "two servers must run side by side"
        assert server.pid is not None and _alive(server.pid)
        assert read_pidfile(server.data_dir) == server.pid
        meta = _rest("GET", f"{server.url}/v1/meta")
        assert meta["version"] == "1.35.2"
        pid = server.pid
    assert not server.is_ready()
    assert server.pid is None
    assert not server.pidfile.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert "recsys starting" in server.log_path.read_text()


def test_start_twice_reuses_the_running_server(weaviate_server: Any) -> None:
    running: LocalWeaviate = weaviate_server.server
    pid = running.pid
    running.start()  # same object: no-op
    assert running.pid == pid

    again = LocalWeaviate(
        binary=running.binary,
        data_dir=running.data_dir,
        host=running.host,
        http_port=running.http_port,
        grpc_port=running.grpc_port,
        startup_timeout_s=10.0,
        log_path=running.log_path,
    )
    again.start()
    assert again.pid == pid
    assert not again.owned
    again.stop()  # does not stop a server it did not launch
    assert running.is_ready()


def test_missing_binary_names_the_install_script(tmp_path: Path) -> None:
    server = _server(tmp_path / "no-such-weaviate-server", tmp_path)
    with pytest.raises(WeaviateServerError, match=r"install-weaviate\.sh") as info:
        server.start()
    assert str(tmp_path / "no-such-weaviate-server") in str(info.value)


def test_port_taken_by_something_else_is_a_clear_error(weaviate_binary: Path, tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        server = _server(weaviate_binary, tmp_path, http_port=port)
        with pytest.raises(WeaviateServerError, match=rf"{port} is already in use"):
            server.start()
    assert server.pid is None


def test_early_exit_reports_the_log_tail(tmp_path: Path) -> None:
    fake = tmp_path / "weaviate-server"
    fake.write_text("#!/bin/sh\necho 'fatal: could not open data dir (simulated)' >&2\nexit 3\n")
    fake.chmod(0o755)
    server = _server(fake, tmp_path, startup_timeout_s=20.0)
    with pytest.raises(WeaviateServerError) as info:
        server.start()
    message = str(info.value)
    assert "exit code 3" in message
    assert "could not open data dir (simulated)" in message


def test_sigkill_then_restart_on_the_same_data_keeps_the_schema(
    weaviate_binary: Path, tmp_path: Path, weaviate_collection_name: str
) -> None:
    first = _server(weaviate_binary, tmp_path)
    first.start()
    try:
        _rest("POST", f"{first.url}/v1/schema", {"class": weaviate_collection_name, "vectorizer": "none"})
        assert first.pid is not None
        os.kill(first.pid, signal.SIGKILL)
        first.stop()  # reaps the killed process
        assert not first.is_ready()

        second = LocalWeaviate(
            binary=weaviate_binary,
            data_dir=first.data_dir,
            host=first.host,
            http_port=first.http_port,
            grpc_port=first.grpc_port,
            startup_timeout_s=120.0,
            log_path=first.log_path,
        )
        with second:
            assert second.is_ready()
            classes = [c["class"] for c in _rest("GET", f"{second.url}/v1/schema")["classes"]]
            assert weaviate_collection_name in classes
    finally:
        first.stop()


def test_detached_start_then_stop_from_pidfile(weaviate_binary: Path, tmp_path: Path) -> None:
    server = _server(weaviate_binary, tmp_path)
    server.start(detach=True)
    try:
        pid = server.pid
        assert pid is not None
        assert os.getsid(pid) == pid, "a detached server leads its own session"
        assert read_pidfile(server.data_dir) == pid

        # What a second `recsys weaviate start` does: finds the running server and reuses it.
        other = _server(weaviate_binary, tmp_path, http_port=server.http_port)
        other.start()
        assert other.pid == pid

        # What `recsys weaviate stop` does.
        assert stop_from_pidfile(server.data_dir) is True
        assert not server.is_ready()
        assert not server.pidfile.exists()
        assert stop_from_pidfile(server.data_dir) is False
    finally:
        server.stop()
