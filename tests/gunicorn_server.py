"""Test helper: the API under a real gunicorn on a free loopback port, always terminated afterwards."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from recommender.store.ports import free_port

REPO = Path(__file__).resolve().parents[1]
STARTUP_S = 120.0


def _healthy(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False  # not listening yet


@contextmanager
def gunicorn(env_extra: Mapping[str, str], log: Path, workers: int = 1, app: str = "api.wsgi:app") -> Iterator[str]:
    """`gunicorn api.wsgi:app` (or ``app``) with the shipped config (its worker class and threads) and ``env_extra`` on
    top of the environment (warm-up off unless ``env_extra`` turns it on); yields its base URL."""
    port = free_port("127.0.0.1")
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "RECSYS_API__WARMUP": "false", **env_extra}
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "--bind",
                                 f"127.0.0.1:{port}", "--workers", str(workers), app],
                                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_S
        while not _healthy(base):
            assert proc.poll() is None, f"gunicorn exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"gunicorn not up after {STARTUP_S}s:\n{log.read_text()[-3000:]}"
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
