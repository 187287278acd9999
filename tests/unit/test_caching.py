"""The bounded cache of the request path: never above its limit, emptied rather than grown."""

import pytest

from recommender.caching import BoundedDict


def test_put_returns_the_value_and_keeps_it():
    kept: BoundedDict[str, int] = BoundedDict(3)
    assert kept.put("a", 1) == 1
    assert kept.get("a") == 1


def test_an_insert_past_the_limit_empties_it_first():
    kept: BoundedDict[str, int] = BoundedDict(2)
    kept.put("a", 1)
    kept.put("b", 2)
    kept.put("c", 3)
    assert dict(kept) == {"c": 3}


def test_replacing_a_kept_key_when_full_keeps_the_others():
    kept: BoundedDict[str, int] = BoundedDict(2)
    kept.put("a", 1)
    kept.put("b", 2)
    kept.put("a", 10)
    assert dict(kept) == {"a": 10, "b": 2}


def test_the_limit_holds_over_many_inserts():
    kept: BoundedDict[int, int] = BoundedDict(7)
    for i in range(100):
        kept.put(i, i)
        assert len(kept) <= 7


def test_a_limit_below_one_is_refused():
    with pytest.raises(ValueError, match="limit"):
        BoundedDict(0)


def test_a_block_that_would_pass_the_limit_empties_the_dict_first() -> None:
    kept: BoundedDict[str, int] = BoundedDict(4)
    kept.put_many([("a", 1), ("b", 2)])
    kept.put_many([("c", 3), ("d", 4)])
    assert kept == {"a": 1, "b": 2, "c": 3, "d": 4}
    kept.put_many([("e", 5)])
    assert kept == {"e": 5}
    kept.put_many([(str(i), i) for i in range(10)])  # more than fits: the first ``limit`` of them
    assert kept == {"0": 0, "1": 1, "2": 2, "3": 3}
