"""`recsys weaviate start|stop|status`: the local Weaviate server the project runs itself."""

from __future__ import annotations

import argparse
from typing import Any

from recommender.config import Settings
from recommender.store.process import stop_from_pidfile
from recommender.store.server import LocalWeaviate


def add_parser(sub: Any) -> None:
    """Register the subcommand."""
    p = sub.add_parser("weaviate", help="start, stop or check the local Weaviate server")
    p.add_argument("action", choices=("start", "stop", "status"))
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Start (detached, idempotent), stop, or report the local server."""
    if settings.weaviate.url:
        print(f"WEAVIATE_URL is set ({settings.weaviate.url}): the project does not manage that server")
        return 0
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
