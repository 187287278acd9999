"""The local Weaviate as an operating-system process: its pidfile, whether it is alive and really Weaviate, how
to stop it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path

from recommender.errors import WeaviateServerError


def pidfile_path(data_dir: Path) -> Path:
    """Where the pid of a server using ``data_dir`` is recorded."""
    return data_dir.parent / "weaviate.pid"


def read_pidfile(data_dir: Path) -> int | None:
    """The pid of a live Weaviate recorded for ``data_dir``; a stale pidfile is removed."""
    path = pidfile_path(data_dir)
    try:
        pid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    if pid_alive(pid) and looks_like_weaviate(pid):
        return pid
    path.unlink(missing_ok=True)
    return None


def stop_from_pidfile(data_dir: Path, timeout: float = 30.0) -> bool:
    """Stop the server recorded in the pidfile of ``data_dir``; False when none was running."""
    pid = read_pidfile(data_dir)
    if pid is None:
        return False
    terminate_pid(pid, timeout)
    pidfile_path(data_dir).unlink(missing_ok=True)
    return True


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """HTTP status of a GET, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError, ValueError):
        return None


def is_weaviate(url: str) -> bool:
    """True when ``url`` serves Weaviate's ``/v1/meta`` (a JSON object with a version)."""
    try:
        with urllib.request.urlopen(f"{url}/v1/meta", timeout=2.0) as resp:
            meta = json.loads(resp.read())
    except (urllib.error.URLError, OSError, ValueError):
        return False
    return isinstance(meta, dict) and "version" in meta


def pid_alive(pid: int) -> bool:
    """True when ``pid`` is a running (not zombie) process; reaps it if it is our exited child."""
    with contextlib.suppress(ChildProcessError, OSError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError, IndexError):
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def looks_like_weaviate(pid: int) -> bool:
    """Guard against a recycled pid: the command line must mention weaviate (when /proc exists)."""
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.parent.parent.exists():
        return True
    try:
        return b"weaviate" in cmdline.read_bytes()
    except OSError:
        return False


def terminate_pid(pid: int, timeout: float) -> None:
    """SIGTERM ``pid``, wait up to ``timeout`` seconds, then SIGKILL."""
    for sig, wait_s in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                return
            time.sleep(0.1)
    raise WeaviateServerError(f"Weaviate process {pid} did not exit after SIGKILL")
