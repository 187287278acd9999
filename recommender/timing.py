"""The one stage timer every job uses: wall seconds per stage name, accumulated, and the stage running now."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class StageTimer:
    """Adds each ``with timer.stage(name):`` block's wall seconds to ``seconds[name]`` (also when it raises).

    ``digits`` rounds each stage's running total (None: full precision); with ``announce`` the start of every
    stage is logged as ``"<announce> stage <name>"`` (an operator, or a fault test, sees where a run is).
    """

    seconds: dict[str, float] = field(default_factory=dict)
    digits: int | None = None
    announce: str = ""
    logger: logging.Logger = field(default=logging.getLogger(__name__), repr=False)
    current: str = ""

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the block as stage ``name``."""
        if self.announce:
            self.logger.info("%s stage %s", self.announce, name)
        self.current = name
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - start)

    def add(self, name: str, seconds: float) -> None:
        """Add ``seconds`` to stage ``name``."""
        total = self.seconds.get(name, 0.0) + seconds
        self.seconds[name] = round(total, self.digits) if self.digits is not None else total
