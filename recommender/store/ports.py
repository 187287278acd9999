"""Free TCP ports for a local Weaviate (HTTP, gRPC and its four internal cluster ports), picked so that several
servers can run side by side."""

from __future__ import annotations

import contextlib
import socket
from dataclasses import dataclass


@dataclass(frozen=True)
class ClusterPorts:
    """Internal ports of a single-node Weaviate: memberlist gossip, cluster data API, raft, raft RPC."""

    gossip: int
    data: int
    raft: int
    raft_rpc: int

    @classmethod
    def free(cls, host: str = "127.0.0.1", exclude: frozenset[int] = frozenset()) -> ClusterPorts:
        """Four distinct ports that are free on ``host`` right now and not in ``exclude``.

        ``exclude`` holds the HTTP/gRPC ports: they are not bound yet, so the OS may hand them out again.
        """
        gossip, data, raft, raft_rpc = free_ports(4, host, exclude)
        return cls(gossip=gossip, data=data, raft=raft, raft_rpc=raft_rpc)

    @classmethod
    def free_cluster(cls, nodes: int, host: str = "127.0.0.1", exclude: frozenset[int] = frozenset()
                     ) -> list[ClusterPorts]:
        """Internal ports for ``nodes`` local nodes, all distinct, each raft RPC port at its raft port + 1 (where
        the nodes of a local cluster look for it)."""
        rafts = free_port_runs(nodes, 2, host, exclude)
        taken = exclude | {p for r in rafts for p in (r, r + 1)}
        others = free_ports(2 * nodes, host, frozenset(taken))
        return [cls(gossip=others[2 * i], data=others[2 * i + 1], raft=r, raft_rpc=r + 1) for i, r in enumerate(rafts)]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now (the OS picks it)."""
    return free_ports(1, host)[0]


def free_ports(count: int, host: str = "127.0.0.1", exclude: frozenset[int] = frozenset()) -> list[int]:
    """``count`` distinct free TCP ports outside ``exclude`` (sockets are held open until all are picked)."""
    with contextlib.ExitStack() as stack:
        ports: list[int] = []
        while len(ports) < count:
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
            if port not in exclude:
                ports.append(port)
        return ports


def port_in_use(host: str, port: int) -> bool:
    """True when something listens on ``host:port`` (or on all interfaces at that port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def free_port_runs(count: int, length: int = 2, host: str = "127.0.0.1", exclude: frozenset[int] = frozenset()
                   ) -> list[int]:
    """``count`` ports p, each with p + 1 … p + length - 1 free too, all distinct and outside ``exclude`` (a local
    Weaviate cluster finds a node's raft RPC port at its raft port + 1; its nodes use consecutive HTTP ports)."""
    with contextlib.ExitStack() as stack:
        taken: set[int] = set(exclude)
        starts: list[int] = []
        while len(starts) < count:
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
            run = range(port, port + length)
            if taken & set(run) or run[-1] > 65535 or not _bind_all(stack, host, run[1:]):
                continue
            taken |= set(run)
            starts.append(port)
        return starts


def _bind_all(stack: contextlib.ExitStack, host: str, ports: range) -> bool:
    """Bind every port (held open by ``stack``); False when one is taken."""
    for port in ports:
        sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True
