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
    """A running test server: its port, and a fresh database per caller."""

    port: int
    root: Path

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
    data, log, port = root / "data", root / "server.log", free_port(HOST)
    started = False
    try:
        _run([str(bins / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--encoding=UTF8",
              "--no-instructions"], log)
        options = f"-c listen_addresses={HOST} -p {port} -k {root} -c fsync={'on' if fsync else 'off'}"
        _run([str(bins / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o", options, "start"], log)
        started = True
        yield PostgresServer(port, root)
    finally:
        if started:
            _run([str(bins / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], log)
        shutil.rmtree(root, ignore_errors=True)
