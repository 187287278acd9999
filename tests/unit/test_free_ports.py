"""Free-port picking for a local Weaviate: distinct ports, never one of the excluded (not yet bound) ones."""

from __future__ import annotations

import socket
from typing import Any, ClassVar

import pytest

from recommender.store import ports as weaviate_ports
from recommender.store.ports import ClusterPorts, free_ports


class _ScriptedSocket:
    """A socket whose ``bind((host, 0))`` gets the next port of a script, as an OS could hand them out."""

    script: ClassVar[list[int]] = []

    def __init__(self, *args: Any) -> None:
        self.port = 0

    def __enter__(self) -> _ScriptedSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def bind(self, address: tuple[str, int]) -> None:
        self.port = _ScriptedSocket.script.pop(0)

    def getsockname(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)


def test_excluded_ports_are_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    _ScriptedSocket.script = [8080, 4001, 50051, 4002, 4003, 4004]
    monkeypatch.setattr(weaviate_ports.socket, "socket", _ScriptedSocket)
    ports = ClusterPorts.free(exclude=frozenset({8080, 50051}))
    assert ports == ClusterPorts(gossip=4001, data=4002, raft=4003, raft_rpc=4004)


def test_real_ports_are_distinct_and_bindable() -> None:
    ports = free_ports(6)
    assert len(set(ports)) == 6
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", port))
