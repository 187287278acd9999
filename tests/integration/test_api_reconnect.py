"""The app survives Weaviate going away and coming back: 503 JSON meanwhile, then the same app serves again.

Weaviate is reached through a loopback TCP forwarder we can cut and restore, so the shared session server
itself is never stopped.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest

from api.app import create_app
from recommender.config import load_settings
from recommender.store.ports import free_ports

pytestmark = pytest.mark.integration


class Forwarder:
    """Forwards a local port to a target port; ``stop()`` closes the listener and every open connection."""

    def __init__(self, listen_port: int, target_port: int, host: str = "127.0.0.1") -> None:
        self.listen_port, self.target_port, self.host = listen_port, target_port, host
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._server: socket.socket | None = None

    def start(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((self.host, self.listen_port))
        server.listen(64)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return  # listener closed by stop()
            upstream = socket.create_connection((self.host, self.target_port))
            with self._lock:
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            return  # either side closed
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    continue

    def stop(self) -> None:
        if self._server is not None:
            with contextlib.suppress(OSError):  # shutdown wakes the thread blocked in accept() on Linux
                self._server.shutdown(socket.SHUT_RDWR)
            self._server.close()
            self._server = None
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for s in sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                continue  # already closed by the other side
            finally:
                s.close()


@pytest.fixture
def forwarders(weaviate_server) -> Iterator[tuple[Forwarder, Forwarder]]:  # type: ignore[no-untyped-def]
    # both picked in one call: two separate picks may get the same port before either is bound
    http_port, grpc_port = free_ports(2, "127.0.0.1")
    http = Forwarder(http_port, weaviate_server.http_port)
    grpc = Forwarder(grpc_port, weaviate_server.grpc_port)
    http.start()
    grpc.start()
    try:
        yield http, grpc
    finally:
        http.stop()
        grpc.stop()


def test_store_connection_is_recreated_after_weaviate_comes_back(forwarders: tuple[Forwarder, Forwarder]) -> None:
    http, grpc = forwarders
    settings = load_settings(env={}, overrides={"weaviate.http_port": http.listen_port,
                                                "weaviate.grpc_port": grpc.listen_port,
                                                "weaviate.collection": "NotThere"})
    app = create_app(settings)
    client = app.test_client()
    try:
        assert client.get("/readyz").status_code == 200
        http.stop()
        grpc.stop()
        down = client.get("/readyz")
        assert down.status_code == 503 and down.get_json()["error"]["code"] == "store_unavailable"
        search = client.post("/v1/search", json={"text": "jeans"})
        assert search.status_code == 503 and search.get_json()["error"]["code"] == "store_unavailable"
        http.start()
        grpc.start()
        assert client.get("/readyz").status_code == 200
        assert client.get("/healthz").status_code == 200
    finally:
        app.extensions["recsys"].close()


def test_a_dropped_live_connection_fails_fast_instead_of_hanging(forwarders: tuple[Forwarder, Forwarder]) -> None:
    import time

    import numpy as np

    from recommender.errors import StoreUnavailable
    from recommender.store.products import ProductStore

    http, grpc = forwarders
    settings = load_settings(env={}, overrides={"weaviate.http_port": http.listen_port,
                                                "weaviate.grpc_port": grpc.listen_port,
                                                "weaviate.collection": "Tiny", "weaviate.query_timeout_s": 2.0})
    with ProductStore.open(settings.weaviate) as store:
        store.ensure_collection()
        try:
            assert store.near_vector(np.ones(4, dtype=np.float32) / 2, "text", 3) == []  # live and empty
            http.stop()
            grpc.stop()
            started = time.monotonic()
            with pytest.raises(StoreUnavailable):
                store.near_vector(np.ones(4, dtype=np.float32) / 2, "text", 3)
            assert time.monotonic() - started < 2.0 + 3.0  # not the client's minute of retries
        finally:
            http.start()
            grpc.start()
            store.drop()
