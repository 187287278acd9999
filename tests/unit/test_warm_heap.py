"""A warm worker's frozen heap: hidden from the collector, and opened again after a release switch."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from api.warmup import freeze_heap, refreeze_heap


class Node:
    """An object in a reference cycle (only the collector frees it)."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def frozen() -> Iterator[None]:
    try:
        yield
    finally:
        gc.unfreeze()


def test_a_frozen_cycle_outlives_a_collection_until_the_heap_is_frozen_again(frozen: None) -> None:
    node = Node()
    alive = weakref.ref(node)
    assert freeze_heap() > 0
    del node
    gc.collect()
    assert alive() is not None  # frozen: a full collection does not see it
    refreeze_heap()  # what a worker does after a release switch
    assert alive() is None
    assert gc.get_freeze_count() > 0


def test_a_process_that_never_froze_is_left_alone(frozen: None) -> None:
    assert gc.get_freeze_count() == 0
    refreeze_heap()
    assert gc.get_freeze_count() == 0
