"""A local Weaviate cluster for development and tests: several processes of the same server binary on one
loopback address, each a :class:`LocalWeaviate` with its own ports and data folder.

Node i (0-based) serves HTTP on ``http_port + i`` and gRPC on ``grpc_port + i``; its gossip, data and raft ports
are picked free once and kept in ``<root>/cluster.json`` so that a node restarted later rejoins with the same
addresses. The first node bootstraps alone on its gossip port, the others join it, and the raft cluster forms
once all of them are up (``RAFT_BOOTSTRAP_EXPECT`` = nodes): a lone first node never reports ready.
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recommender.errors import WeaviateServerError
from recommender.store.ports import ClusterPorts, port_in_use
from recommender.store.process import pid_alive, stop_from_pidfile
from recommender.store.server import LocalWeaviate

if TYPE_CHECKING:
    from recommender.config import Settings, WeaviateSettings

STATE_FILE = "cluster.json"
_POLL_S = 0.2


def cluster_root(settings: Settings) -> Path:
    """Where a local cluster keeps its nodes' data, logs, pidfiles and ``cluster.json``."""
    return settings.data_dir / "weaviate-cluster"


class LocalCluster:
    """``nodes`` Weaviate processes on ``host`` forming one cluster, their data under ``root/node<i>``."""

    def __init__(self, binary: Path, root: Path, nodes: int = 3, host: str = "127.0.0.1", http_port: int = 8080,
                 grpc_port: int = 50051, startup_timeout_s: float = 90.0, extra_env: dict[str, str] | None = None
                 ) -> None:
        if nodes < 2:
            raise WeaviateServerError("a local cluster needs at least 2 nodes")
        self.binary, self.root, self.host = Path(binary), Path(root).absolute(), host
        self.http_port, self.grpc_port, self.startup_timeout_s = http_port, grpc_port, startup_timeout_s
        self.extra_env = dict(extra_env or {})
        self.ports = self._load_or_pick_ports(nodes)
        self.servers = [self._server(i) for i in range(nodes)]

    @classmethod
    def from_settings(cls, settings: Settings, nodes: int | None = None) -> LocalCluster:
        """The cluster of ``nodes`` (default ``weaviate.nodes``) local nodes configured by ``[weaviate]``."""
        ws = settings.weaviate
        return cls(settings.weaviate_binary, cluster_root(settings), nodes or ws.nodes, ws.host, ws.http_port,
                   ws.grpc_port, ws.startup_timeout_s)

    @property
    def urls(self) -> list[str]:
        """Each node's HTTP base URL."""
        return [s.url for s in self.servers]

    def client_settings(self, base: WeaviateSettings) -> WeaviateSettings:
        """``base`` pointed at every node of this cluster (the client fails over between them)."""
        grpc = ",".join(f"{s.host}:{s.grpc_port}" for s in self.servers)
        return replace(base, url=",".join(self.urls), grpc_url=grpc)

    def is_ready(self) -> bool:
        """True when every node answers ready."""
        return all(s.is_ready() for s in self.servers)

    def start(self, detach: bool = False) -> None:
        """Launch the nodes not already running (the first one first, then the rest once its gossip port is open)
        and wait until every node is ready; nodes left running by an earlier ``start`` are adopted."""
        deadline = time.monotonic() + self.startup_timeout_s
        launched: list[LocalWeaviate] = []
        try:
            for index, server in enumerate(self.servers):
                if server.adopt():
                    continue
                server.extra_env["CLUSTER_JOIN"] = self._join_list(index)
                server.launch(detach)
                launched.append(server)
                if index == 0:
                    self._wait_gossip(server, self.ports[0].gossip, deadline)
            for server in self.servers:
                server.wait_ready(max(1.0, deadline - time.monotonic()))
        except WeaviateServerError:
            for server in launched:
                server.stop(timeout=10.0)
            raise

    def kill(self, index: int) -> None:
        """SIGKILL one node (a crash, for tests and benchmarks) and wait until it is gone."""
        pid = self.servers[index].pid
        if pid is None:
            raise WeaviateServerError(f"node {index + 1} is not running")
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)

    def restart(self, index: int) -> None:
        """Start one stopped node again with its old ports and data (it rejoins through the live nodes)."""
        server = self.servers[index]
        server.extra_env["CLUSTER_JOIN"] = self._join_list(index)
        server.start()

    def stop(self, timeout: float = 30.0) -> int:
        """Stop every node (those this object launched, and those recorded in their pidfiles); how many ran."""
        stopped = 0
        for server in self.servers:
            if server.owned:
                server.stop(timeout)
                stopped += 1
            elif stop_from_pidfile(server.data_dir, timeout):
                stopped += 1
        return stopped

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _server(self, index: int) -> LocalWeaviate:
        names = [f"node{i + 1}" for i in range(len(self.ports))]
        env = {
            **self.extra_env, "CLUSTER_HOSTNAME": names[index], "CLUSTER_IN_LOCALHOST": "true",
            "RAFT_JOIN": ",".join(f"{name}:{p.raft}" for name, p in zip(names, self.ports, strict=True)),
            "RAFT_BOOTSTRAP_EXPECT": str(len(self.ports)), "GOMAXPROCS": self.extra_env.get("GOMAXPROCS", "1"),
        }
        folder = self.root / names[index]
        return LocalWeaviate(self.binary, folder / "data", self.host, self.http_port + index, self.grpc_port + index,
                             self.startup_timeout_s, folder / "weaviate.log", cluster_ports=self.ports[index],
                             extra_env=env)

    def _join_list(self, index: int) -> str:
        """Gossip addresses of the other nodes that are listening now (none for a first node bootstrapping)."""
        addr = "127.0.0.1" if not self.host.startswith("127.") else self.host
        return ",".join(f"{addr}:{p.gossip}" for i, p in enumerate(self.ports)
                        if i != index and port_in_use(addr, p.gossip))

    def _wait_gossip(self, server: LocalWeaviate, port: int, deadline: float) -> None:
        """Wait until the first node listens on its gossip port, so the others can join it."""
        addr = "127.0.0.1" if not self.host.startswith("127.") else self.host
        while not port_in_use(addr, port):
            if server.pid is None or not pid_alive(server.pid):
                raise WeaviateServerError(f"Weaviate node 1 exited while starting; see {server.log_path}")
            if time.monotonic() > deadline:
                raise WeaviateServerError(f"Weaviate node 1 opened no gossip port in time; see {server.log_path}")
            time.sleep(_POLL_S)

    def _load_or_pick_ports(self, nodes: int) -> list[ClusterPorts]:
        """The internal ports recorded for this cluster, or new free ones (recorded) for a new cluster."""
        path = self.root / STATE_FILE
        recorded = _read_state(path)
        if recorded.get("nodes") == nodes and recorded.get("http_port") == self.http_port:
            return [ClusterPorts(**p) for p in recorded["ports"]]
        taken = {self.http_port + i for i in range(nodes)} | {self.grpc_port + i for i in range(nodes)}
        ports = ClusterPorts.free_cluster(nodes, "127.0.0.1", frozenset(taken))
        self.root.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"nodes": nodes, "http_port": self.http_port, "grpc_port": self.grpc_port,
                                    "ports": [asdict(p) for p in ports]}, indent=1))
        return ports


def _read_state(path: Path) -> dict[str, Any]:
    """The recorded ``cluster.json``, or {} when there is none (a new cluster) or it is unreadable."""
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) and isinstance(state.get("ports"), list) else {}


def recorded_nodes(root: Path) -> int:
    """How many nodes the local cluster recorded under ``root`` has (0 when there is none)."""
    return len(_read_state(root / STATE_FILE).get("ports", []))
