"""Per-process warm-up: load what a worker serves (encoders, recommendation service, ask vocabulary) before it
reports ready, so no request pays for loading a model.

Runs in a daemon thread started per process (after gunicorn forks, since the app is built in the worker). A step
that fails (e.g. Weaviate down) is retried with a capped backoff; readiness reports the failure meanwhile.

A warm worker then freezes its heap (``freeze_heap``): the loaded release and models are hundreds of thousands of
long-lived objects that every full garbage collection would otherwise scan again, a pause of ~0.15 s on the
fixtures (more in a large shop) during which none of the worker's requests runs.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger(__name__)
RETRY_S = (1.0, 2.0, 5.0, 10.0)


class Warmup:
    """Named steps run in order in a background thread, each retried until it succeeds."""

    def __init__(self, steps: Mapping[str, Callable[[], Any]]) -> None:
        self._steps = dict(steps)
        self.done_steps: list[str] = []
        self.error: str | None = None
        self.finished = threading.Event()
        self._thread = threading.Thread(target=self._run, name="recsys-warmup", daemon=True)

    def start(self) -> Warmup:
        """Begin warming in the background (returns at once)."""
        self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> bool:
        """Block until warm (True) or ``timeout`` passed (False)."""
        return self.finished.wait(timeout)

    def status(self) -> dict[str, Any]:
        """What is loaded so far, what is left, and the last failure (for ``/readyz``)."""
        pending = [name for name in self._steps if name not in self.done_steps]
        return {"warm": self.finished.is_set(), "loaded": list(self.done_steps), "pending": pending,
                "error": self.error}

    def _run(self) -> None:
        t0 = time.perf_counter()
        for name, step in self._steps.items():
            self._run_step(name, step)
        log.info("warm-up finished in %.1fs: %s", time.perf_counter() - t0, ", ".join(self.done_steps))
        self.finished.set()

    def _run_step(self, name: str, step: Callable[[], Any]) -> None:
        attempt = 0
        while True:
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - a failed step must not kill the worker; it is retried
                self.error = f"{name}: {type(exc).__name__}: {exc}"
                log.warning("warm-up step %s failed (retrying): %s", name, self.error)
                time.sleep(RETRY_S[min(attempt, len(RETRY_S) - 1)])
                attempt += 1
                continue
            self.done_steps.append(name)
            self.error = None
            return


def freeze_heap() -> int:
    """Collect, then hide every object alive now from the collector (``gc.freeze``); the count frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def refreeze_heap() -> None:
    """After a release switch in a frozen process: let the collector see everything again (the old release's cycles
    would never be freed while frozen), collect, freeze again. Does nothing in a process that never froze."""
    if gc.get_freeze_count() == 0:
        return
    gc.unfreeze()
    log.info("heap frozen again after a release switch: %d objects", freeze_heap())
