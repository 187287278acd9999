"""Start and stop a local single-node Weaviate server process (plain ``subprocess`` + ``urllib``).

The server binary comes from ``scripts/install-weaviate.sh``. Everything it listens on is chosen
here so that several servers (a demo and a test run, say) can run side by side: HTTP and gRPC
ports are passed in, the internal cluster ports (gossip, data, raft, raft RPC) default to free ones.
A pidfile next to the data dir (``<data_dir>/../weaviate.pid``) lets one command start a detached
server and another stop it.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import asdict
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING

from recommender.errors import WeaviateServerError
from recommender.store.ports import ClusterPorts, port_in_use
from recommender.store.process import http_status, is_weaviate, pid_alive, pidfile_path, read_pidfile

if TYPE_CHECKING:
    from recommender.config import Settings

INSTALL_HINT = "run `bash scripts/install-weaviate.sh` to build and install it"
_POLL_S = 0.2
_LOG_TAIL_LINES = 30
_ENV_PASSTHROUGH = ("PATH", "HOME", "TMPDIR", "TZ")


class LocalWeaviate:
    """A single-node Weaviate server process on loopback, with its data in ``data_dir``."""

    def __init__(
        self,
        binary: Path,
        data_dir: Path,
        host: str = "127.0.0.1",
        http_port: int = 8080,
        grpc_port: int = 50051,
        startup_timeout_s: float = 90.0,
        log_path: Path | None = None,
        *,
        cluster_ports: ClusterPorts | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.binary = Path(binary).absolute()
        self.data_dir = Path(data_dir).absolute()
        self.host = host
        self.http_port = http_port
        self.grpc_port = grpc_port
        self.startup_timeout_s = startup_timeout_s
        self.log_path = Path(log_path).absolute() if log_path else self.data_dir.parent / "weaviate.log"
        self.cluster_ports = cluster_ports
        self.extra_env = dict(extra_env or {})
        self._proc: subprocess.Popen[bytes] | None = None
        self._pid: int | None = None
        self._log_offset = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalWeaviate:
        """A server configured from the ``[weaviate]`` section and the project's data/cache dirs."""
        ws = settings.weaviate
        return cls(
            binary=settings.weaviate_binary,
            data_dir=settings.weaviate_data_dir,
            host=ws.host,
            http_port=ws.http_port,
            grpc_port=ws.grpc_port,
            startup_timeout_s=ws.startup_timeout_s,
        )

    @property
    def url(self) -> str:
        """Base HTTP URL of the server."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.http_port}"

    @property
    def pid(self) -> int | None:
        """Process id of the server this object started or reused, if any."""
        return self._pid

    @property
    def owned(self) -> bool:
        """True when this object launched the process (and so ``stop()`` will end it)."""
        return self._proc is not None

    @property
    def pidfile(self) -> Path:
        """Pidfile for this server's data dir."""
        return pidfile_path(self.data_dir)

    def is_ready(self) -> bool:
        """True when the server answers 200 on ``/v1/.well-known/ready``."""
        return http_status(f"{self.url}/v1/.well-known/ready") == 200

    def start(self, detach: bool = False) -> None:
        """Launch the server (or reuse a ready one on the same port) and wait until it is ready.

        ``detach=True`` puts it in its own session so it outlives this Python process;
        stop it later with :func:`stop_from_pidfile`.
        """
        if self._proc is not None and self._proc.poll() is None:
            self.wait_ready()
            return
        if self._try_reuse():
            return
        self._check_can_launch()
        self._launch(detach)
        try:
            self.wait_ready()
        except WeaviateServerError:
            self._kill_own_process(timeout=10.0)
            raise

    def launch(self, detach: bool = False) -> None:
        """Spawn the process without waiting for it to be ready (a cluster node is ready only with its peers)."""
        self._check_can_launch()
        self._launch(detach)

    def adopt(self) -> bool:
        """Take over the live server recorded in our pidfile (so ``pid`` and ``wait_ready`` see it); False if none."""
        self._pid = read_pidfile(self.data_dir)
        return self._pid is not None

    def wait_ready(self, timeout: float | None = None) -> None:
        """Poll the readiness endpoint until it answers 200; raise if the process dies or time runs out."""
        limit = self.startup_timeout_s if timeout is None else timeout
        deadline = time.monotonic() + limit
        while True:
            if self.is_ready():
                return
            if self._exited():
                raise WeaviateServerError(
                    f"Weaviate exited before it was ready{self._exit_code()}; "
                    f"last lines of {self.log_path}:\n{self._log_tail()}"
                )
            if time.monotonic() >= deadline:
                raise WeaviateServerError(
                    f"Weaviate at {self.url} was not ready after {limit:.0f}s; "
                    f"last lines of {self.log_path}:\n{self._log_tail()}"
                )
            time.sleep(_POLL_S)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the process this object launched: SIGTERM, wait, SIGKILL fallback. A reused one is left."""
        if self._proc is None:
            self._pid = None
            return
        self._kill_own_process(timeout)

    def __enter__(self) -> LocalWeaviate:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def environment(self, ports: ClusterPorts) -> dict[str, str]:
        """Environment the server process gets (nothing else is inherited but PATH/HOME/TMPDIR/TZ)."""
        env = {k: v for k, v in os.environ.items() if k in _ENV_PASSTHROUGH}
        env.update(
            PERSISTENCE_DATA_PATH=str(self.data_dir),
            AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED="true",
            DEFAULT_VECTORIZER_MODULE="none",
            ENABLE_MODULES="",
            CLUSTER_HOSTNAME="node1",
            CLUSTER_BIND_ADDR=self._cluster_addr(),
            CLUSTER_ADVERTISE_ADDR=self._cluster_addr(),
            CLUSTER_GOSSIP_BIND_PORT=str(ports.gossip),
            CLUSTER_DATA_BIND_PORT=str(ports.data),
            RAFT_PORT=str(ports.raft),
            RAFT_INTERNAL_RPC_PORT=str(ports.raft_rpc),
            RAFT_BOOTSTRAP_EXPECT="1",
            RAFT_JOIN=f"node1:{ports.raft}",
            RAFT_TIMEOUTS_MULTIPLIER="1",
            GRPC_PORT=str(self.grpc_port),
            DISABLE_TELEMETRY="true",
            GO_PROFILING_DISABLE="true",
            PROMETHEUS_MONITORING_ENABLED="false",
            QUERY_DEFAULTS_LIMIT="25",
        )
        env.update(self.extra_env)
        return env

    def command(self) -> list[str]:
        """Command line of the server process."""
        return [str(self.binary), "--host", self.host, "--port", str(self.http_port), "--scheme", "http"]

    def _exited(self) -> bool:
        """True when the process we launched or adopted is gone."""
        if self._proc is not None:
            return self._proc.poll() is not None
        return self._pid is not None and not pid_alive(self._pid)

    def _exit_code(self) -> str:
        """`` (exit code N)`` for a launched process that ended, else empty."""
        code = self._proc.returncode if self._proc is not None else None
        return f" (exit code {code})" if code is not None else ""

    def _cluster_addr(self) -> str:
        """Address for gossip/raft: the HTTP host when it is a loopback IP, else 127.0.0.1."""
        return self.host if self.host.startswith("127.") else "127.0.0.1"

    def _try_reuse(self) -> bool:
        """Adopt a Weaviate already serving on our port (ready, or starting per our pidfile)."""
        recorded = read_pidfile(self.data_dir)
        if self.is_ready() and is_weaviate(self.url):
            self._pid = recorded
            return True
        if recorded is not None and port_in_use(self.host, self.http_port):
            self._pid = recorded
            self.wait_ready()
            return True
        return False

    def _check_can_launch(self) -> None:
        """Raise a clear error when the binary is missing or a port we need is taken."""
        if not self.binary.is_file():
            raise WeaviateServerError(f"Weaviate server binary not found at {self.binary}; {INSTALL_HINT}")
        if not os.access(self.binary, os.X_OK):
            raise WeaviateServerError(f"Weaviate server binary {self.binary} is not executable; {INSTALL_HINT}")
        needed = [("HTTP", self.host, self.http_port), ("gRPC", self.host, self.grpc_port)]
        if self.cluster_ports is not None:
            addr = self._cluster_addr()
            needed += [(name, addr, port) for name, port in asdict(self.cluster_ports).items()]
        for what, host, port in needed:
            if port_in_use(host, port):
                raise WeaviateServerError(
                    f"cannot start Weaviate: {what} port {host}:{port} is already in use "
                    "by something that is not a ready Weaviate; free it or configure another port"
                )

    def _launch(self, detach: bool) -> None:
        """Spawn the process with its output appended to the log file, and record its pid."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        ports = self.cluster_ports or ClusterPorts.free(
            self._cluster_addr(), exclude=frozenset({self.http_port, self.grpc_port})
        )
        with self.log_path.open("ab") as log:
            self._log_offset = log.tell()
            _write_banner(log, self.command(), ports)
            self._proc = subprocess.Popen(
                self.command(),
                env=self.environment(ports),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=str(self.data_dir),
                start_new_session=detach,
            )
        self._pid = self._proc.pid
        self.pidfile.write_text(f"{self._proc.pid}\n")

    def _kill_own_process(self, timeout: float) -> None:
        """Terminate the launched process (SIGKILL after ``timeout``) and drop its pidfile."""
        proc, self._proc = self._proc, None
        self._pid = None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if read_pidfile(self.data_dir) in (None, proc.pid):
            self.pidfile.unlink(missing_ok=True)

    def _log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """The last lines this run wrote to the log (messages only, for JSON log lines)."""
        try:
            with self.log_path.open("rb") as fh:
                fh.seek(self._log_offset)
                text = fh.read().decode("utf-8", errors="replace")
        except OSError:
            return "(no log)"
        tail = [_readable(line) for line in text.splitlines()[-lines:]]
        return "\n".join(tail) or "(log is empty)"


def _write_banner(log: IO[bytes], command: list[str], ports: ClusterPorts) -> None:
    """Mark the start of a run in the log file."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    log.write(f"=== {stamp} recsys starting: {' '.join(command)} ({ports}) ===\n".encode())
    log.flush()


def _readable(line: str) -> str:
    """A Weaviate JSON log line as ``level: msg (error)``; other lines unchanged."""
    try:
        entry = json.loads(line)
    except ValueError:
        return line
    if not isinstance(entry, dict) or "msg" not in entry:
        return line
    extra = f" ({entry['error']})" if "error" in entry else ""
    return f"{entry.get('level', '?')}: {entry['msg']}{extra}"
