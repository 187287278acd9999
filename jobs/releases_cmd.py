"""`recsys releases`: list the saved releases, publish one by hand, or roll back to the one before.

Publish and rollback (``recommender.refresh.switch``) take the refresh lock (never while a refresh runs), switch
the ``current`` pointer atomically (the API follows within its reload interval, without restart) and then
rewrite the store's ``behavior`` vectors from that release's ALS model.
"""

from __future__ import annotations

import argparse
from typing import Any

from recommender import components
from recommender.config import Settings
from recommender.releases import ReleaseStore


def add_parser(sub: Any) -> None:
    """Register the subcommand."""
    p = sub.add_parser("releases", help="list releases, publish one, or roll back")
    p.add_argument("action", choices=("list", "publish", "rollback"))
    p.add_argument("version", nargs="?", help="the release to publish (action publish)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Do the action."""
    releases = ReleaseStore.in_data_dir(settings.data_dir)
    if args.action == "list":
        print_releases(releases)
        return 0
    if args.action == "publish" and not args.version:
        raise SystemExit("recsys releases publish: give the version to publish")
    version = components.switch_release(settings, args.version if args.action == "publish" else None,
                                        progress=not args.no_progress)
    print(f"releases: {args.action}: now serving {version}")
    return 0


def print_releases(releases: ReleaseStore) -> None:
    """One line per saved release, newest first; ``*`` marks the served one."""
    current = releases.current_version()
    for version in reversed(releases.versions()):
        meta = releases.load(version).meta
        gate = meta.get("gate", {})
        mark = "*" if version == current else " "
        print(f"{mark} {version}  events={meta.get('counts', {}).get('events')}  refit={meta.get('refit')}  "
              f"{gate.get('reason', '')}")
    if current is None:
        print("(no release published)")
