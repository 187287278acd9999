"""Test helper: a throwaway PostgreSQL server (initdb, then pg_ctl on a free loopback port), stopped and removed after.

initdb refuses to run as root, and CI runs as root: then every server command runs as the ``postgres`` user
(``runuser``) on a temp dir it owns. Trust authentication on 127.0.0.1 only; the socket stays in the temp dir.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from recommender.store.ports import free_port

HOST = "127.0.0.1"
SEARCHED = "pg_ctl on PATH, /usr/lib/postgresql/*/bin"


def bindir() -> Path | None:
    """Where initdb/pg_ctl are: on PATH, else the newest Debian-style /usr/lib/postgresql/<major>/bin."""
    on_path = shutil.which("pg_ctl")
    if on_path and Path(on_path).with_name("initdb").exists():
        return Path(on_path).parent
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name)
                   if p.parent.parent.name.isdigit() else 0)
    return found[-1].parent if found else None


@dataclass(frozen=True)
class PostgresServer:
    """A running test server: its port, a fresh database per caller, and stop/start on the same port and data."""

    port: int
    root: Path
    bins: Path
    options: str

    def start(self) -> None:
        """Start (again) on the same port and data directory."""
        _run([str(self.bins / "pg_ctl"), "-D", str(self.root / "data"), "-l", str(self.root / "server.log"), "-w",
              "-t", "60", "-o", self.options, "start"], self.root / "server.log")

    def stop(self) -> None:
        """Stop at once (connections are cut, as when the server is lost)."""
        _run([str(self.bins / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop"],
             self.root / "server.log")

    def url(self, database: str = "postgres") -> str:
        """libpq URL of ``database`` as the trusted ``postgres`` superuser."""
        return f"postgresql://postgres@{HOST}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create an empty database; its URL."""
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]  # a test-made name
        return self.url(name)


def _as_server_user() -> list[str]:
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def _run(cmd: list[str], log: Path) -> None:
    done = subprocess.run([*_as_server_user(), *cmd], capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:2])} failed ({done.returncode}): {done.stderr[-2000:]}\n"
                           f"{log.read_text()[-2000:] if log.exists() else ''}")


@contextmanager
def postgres_server(bins: Path, *, fsync: bool = False) -> Iterator[PostgresServer]:
    """initdb + start a server on a free loopback port; stopped (immediate) and its directory removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="recsys-pg-"))  # under /tmp: reachable by the postgres user
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(root, user.pw_uid, user.pw_gid)
    port = free_port(HOST)
    options = f"-c listen_addresses={HOST} -p {port} -k {root} -c fsync={'on' if fsync else 'off'}"
    server = PostgresServer(port, root, bins, options)
    try:
        _run([str(bins / "initdb"), "-D", str(root / "data"), "-U", "postgres", "--auth=trust", "--encoding=UTF8",
              "--no-instructions"], root / "server.log")
        server.start()
        yield server
    finally:
        if (root / "data" / "postmaster.pid").exists():
            server.stop()
        shutil.rmtree(root, ignore_errors=True)
