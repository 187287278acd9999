"""`recsys weaviate start|stop|status [--nodes N]`: the local Weaviate server (or local cluster) the project runs."""

from __future__ import annotations

import argparse
import time
from typing import Any

from recommender.config import Settings
from recommender.store.cluster import LocalCluster, cluster_root, recorded_nodes
from recommender.store.process import stop_from_pidfile
from recommender.store.server import LocalWeaviate


def add_parser(sub: Any) -> None:
    """Register the subcommand."""
    p = sub.add_parser("weaviate", help="start, stop or check the local Weaviate server or cluster")
    p.add_argument("action", choices=("start", "stop", "status"))
    p.add_argument("--nodes", type=int, default=None,
                   help="local cluster nodes (default: weaviate.nodes; stop/status: the recorded cluster, if any)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Start (detached, idempotent), stop, or report the local server or cluster."""
    if settings.weaviate.url:
        print(f"WEAVIATE_URL is set ({settings.weaviate.url}): the project does not manage that server")
        return 0
    nodes = args.nodes or (settings.weaviate.nodes if args.action == "start" else 0) \
        or recorded_nodes(cluster_root(settings)) or settings.weaviate.nodes
    if nodes > 1:
        return _cluster(args.action, LocalCluster.from_settings(settings, nodes))
    server = LocalWeaviate.from_settings(settings)
    if args.action == "start":
        server.start(detach=True)
        print(f"Weaviate ready at {server.url} (data in {settings.weaviate_data_dir})")
    elif args.action == "stop":
        stopped = stop_from_pidfile(settings.weaviate_data_dir)
        print("Weaviate stopped" if stopped else "no local Weaviate was running")
    else:
        print(f"Weaviate at {server.url}: {'ready' if server.is_ready() else 'not running'}")
        return 0 if server.is_ready() else 3
    return 0


def _cluster(action: str, cluster: LocalCluster) -> int:
    """The same three actions for a local cluster; the printed settings point other commands at every node."""
    urls = ",".join(cluster.urls)
    if action == "start":
        started = time.monotonic()
        cluster.start(detach=True)
        grpc = ",".join(f"{s.host}:{s.grpc_port}" for s in cluster.servers)
        print(f"Weaviate cluster of {len(cluster.servers)} nodes ready in {time.monotonic() - started:.1f}s "
              f"(data in {cluster.root}); to use it: WEAVIATE_URL={urls} WEAVIATE_GRPC_URL={grpc}")
    elif action == "stop":
        stopped = cluster.stop()
        print(f"Weaviate cluster: {stopped} node(s) stopped" if stopped else "no local Weaviate cluster was running")
    else:
        ready = [s.is_ready() for s in cluster.servers]
        for server, ok in zip(cluster.servers, ready, strict=True):
            print(f"Weaviate node at {server.url}: {'ready' if ok else 'not running'}")
        return 0 if all(ready) else 3
    return 0
