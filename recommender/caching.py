"""The one bounded cache of the request path: answers a worker keeps because it will be asked again soon."""

from __future__ import annotations

from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


class BoundedDict(dict[K, V]):
    """A dict of at most ``limit`` entries that empties itself when an insert would pass the limit.

    For answers that are cheap to recompute (a missing entry costs one recomputation): a hit stays one C-level dict
    lookup, with none of an LRU's per-hit bookkeeping, and memory stays bounded by ``limit`` entries. Reads and
    writes are single dict operations, so threads may share one (a lost insert is recomputed next time).
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        super().__init__()
        self.limit = limit

    def put(self, key: K, value: V) -> V:
        """Keep ``value`` under ``key`` (emptying the dict first when it is full) and return it."""
        if len(self) >= self.limit and key not in self:
            self.clear()
        self[key] = value
        return value

    def put_many(self, pairs: list[tuple[K, V]]) -> None:
        """Keep a block of new entries at once (emptying the dict first when they would pass the limit)."""
        if len(self) + len(pairs) > self.limit:
            self.clear()
        self.update(pairs[: self.limit])
