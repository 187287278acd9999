"""Precomputed product-page lists: the SQLite writer, the read-only reader and the view snapshots."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from recommender.domain import ItemView, RankedItem
from recommender.ranking.precomputed import ListWriter, PrecomputedLists, view_from, view_json

RANKED = [
    RankedItem("p2", 0.9, {"text": 0.7, "image": 0.2}, ("text", "image")),
    RankedItem("p3", 0.45, {"collaborative": 0.45}, ("collaborative",)),
    RankedItem("p1", -0.125, {}, ()),
]

VIEW = ItemView(
    product_id="p1",
    vectors={"text": np.ones(4, dtype=np.float32)},
    category=("Men", "Shirts"),
    price=19.99,
    variant_group="g1",
    in_stock=False,
    title="Red shirt",
    color="red",
    image="https://example.invalid/p1.jpg",
    attributes=(("pattern", "striped"), ("department", "menswear")),
)


def write_lists(path: Path, lists: dict[str, list[RankedItem]], views: Sequence[ItemView] = ()) -> None:
    """Write a lists file with the given anchors and views, and commit it."""
    writer = ListWriter(path)
    for anchor, ranked in lists.items():
        writer.put(anchor, ranked)
    writer.put_views(views)
    writer.close()


@pytest.fixture
def lists_path(tmp_path: Path) -> Path:
    path = tmp_path / "lists.sqlite"
    write_lists(path, {"a1": RANKED, "a2": RANKED[:1], "empty": []}, [VIEW])
    return path


def assert_same_ranked(got: list[RankedItem], want: list[RankedItem]) -> None:
    """Same items in the same order with the same scores, signals and sources (equality ignores signals)."""
    assert [r.product_id for r in got] == [r.product_id for r in want]
    for g, w in zip(got, want, strict=True):
        assert g.score == pytest.approx(w.score, abs=1e-6)
        assert g.signals == pytest.approx(w.signals)
        assert g.sources == w.sources
        assert isinstance(g.sources, tuple)


def test_lists_round_trip_in_order(lists_path: Path) -> None:
    """get() returns each anchor's RankedItems in stored order with score, signals and sources intact."""
    reader = PrecomputedLists(lists_path)
    try:
        a1 = reader.get("a1")
        a2 = reader.get("a2")
        empty = reader.get("empty")
    finally:
        reader.close()
    assert a1 is not None and a2 is not None
    assert_same_ranked(a1, RANKED)
    assert_same_ranked(a2, RANKED[:1])
    assert empty == []  # ranked but empty is not "unknown"


def test_unknown_anchor_is_none(lists_path: Path) -> None:
    """An anchor the refresh did not rank has no list (None, not [])."""
    reader = PrecomputedLists(lists_path)
    try:
        assert reader.get("nope") is None
    finally:
        reader.close()


def test_put_replaces_an_anchors_list(tmp_path: Path) -> None:
    """Putting the same anchor twice keeps the last list only."""
    path = tmp_path / "lists.sqlite"
    writer = ListWriter(path)
    writer.put("a1", RANKED)
    writer.put("a1", RANKED[2:])
    writer.close()
    reader = PrecomputedLists(path)
    try:
        got = reader.get("a1")
        assert got is not None
        assert_same_ranked(got, RANKED[2:])
        assert reader.count() == 1
    finally:
        reader.close()


def test_scores_are_stored_to_six_decimals(tmp_path: Path) -> None:
    """Scores are rounded to 1e-6 on disk (documents the precision the API serves)."""
    path = tmp_path / "lists.sqlite"
    write_lists(path, {"a": [RankedItem("p", 0.123456789)]})
    reader = PrecomputedLists(path)
    try:
        got = reader.get("a")
    finally:
        reader.close()
    assert got is not None and got[0].score == 0.123457


def test_views_snapshot_round_trips_without_vectors(lists_path: Path) -> None:
    """views() returns every ItemView field as written, but no vectors; unknown ids are left out."""
    reader = PrecomputedLists(lists_path)
    try:
        views = reader.views(["p1", "missing", "p1"])
        assert reader.views([]) == {}
    finally:
        reader.close()
    assert set(views) == {"p1"}
    got = views["p1"]
    assert got == VIEW  # dataclass equality: every field but vectors
    assert got.vectors == {}
    assert got.category == ("Men", "Shirts") and isinstance(got.category, tuple)
    assert got.attributes == (("pattern", "striped"), ("department", "menswear"))
    assert all(isinstance(kv, tuple) for kv in got.attributes)
    assert got.in_stock is False and got.price == 19.99 and got.title == "Red shirt"


def test_view_json_round_trip_with_defaults() -> None:
    """A minimal ItemView (price None, no category or attributes) survives view_json/view_from unchanged."""
    view = ItemView("p9")
    back = view_from(view_json(view))
    assert back == view
    assert back.price is None and back.in_stock is True and back.attributes == ()
    assert "vectors" not in view_json(VIEW)


def test_carry_copies_chosen_lists_verbatim_and_keeps_new_ones(lists_path: Path, tmp_path: Path) -> None:
    """carry() copies the named anchors' lists from an older file (inside SQLite) next to lists just ranked;
    anchors the old file lacks are ignored, the rest are not copied."""
    old = PrecomputedLists(lists_path)
    try:
        list_rows = dict(old.rows("lists"))
    finally:
        old.close()
    new_path = tmp_path / "next.sqlite"
    writer = ListWriter(new_path)
    writer.put("a2", RANKED[1:])  # re-ranked in this release
    assert writer.carry(lists_path, ["a1", "empty", "not-in-old"]) == 2
    writer.put_views([VIEW])
    writer.close()
    new = PrecomputedLists(new_path)
    try:
        rows = dict(new.rows("lists"))
        assert sorted(rows) == ["a1", "a2", "empty"]
        assert rows["a1"] == list_rows["a1"] and rows["empty"] == list_rows["empty"]
        a2 = new.get("a2")
        assert a2 is not None
        assert_same_ranked(a2, RANKED[1:])
        assert new.views(["p1"])["p1"] == VIEW
    finally:
        new.close()


def test_carry_copies_snapshots_and_refuses_other_tables(lists_path: Path, tmp_path: Path) -> None:
    """carry(…, "items") copies render snapshots the same way; any other table name is refused."""
    writer = ListWriter(tmp_path / "next.sqlite")
    try:
        assert writer.carry(lists_path, ["p1", "p9"], "items") == 1
        with pytest.raises(ValueError, match="unknown table"):
            writer.carry(lists_path, ["p1"], "items; DROP TABLE lists")
    finally:
        writer.close()
    new = PrecomputedLists(tmp_path / "next.sqlite")
    try:
        assert new.views(["p1"])["p1"] == VIEW and new.count() == 0
    finally:
        new.close()


def test_count_is_number_of_anchors(lists_path: Path, tmp_path: Path) -> None:
    """count() counts anchors (lists), not items; an empty file counts 0."""
    reader = PrecomputedLists(lists_path)
    try:
        assert reader.count() == 3
    finally:
        reader.close()
    empty_path = tmp_path / "empty.sqlite"
    ListWriter(empty_path).close()
    empty = PrecomputedLists(empty_path)
    try:
        assert empty.count() == 0
        assert list(empty.rows("lists")) == []
    finally:
        empty.close()


@pytest.mark.parametrize("table", ["views", "lists; DROP TABLE items", "LISTS", ""])
def test_bad_table_name_raises_value_error(lists_path: Path, tmp_path: Path, table: str) -> None:
    """Only ``lists``, ``items`` and ``pools`` are accepted, by the writer and the reader alike."""
    writer = ListWriter(tmp_path / "other.sqlite")
    try:
        with pytest.raises(ValueError, match="unknown table"):
            writer.carry(lists_path, ["a"], table)
    finally:
        writer.close()
    reader = PrecomputedLists(lists_path)
    try:
        with pytest.raises(ValueError, match="unknown table"):
            reader.rows(table)
        assert reader.count() == 3  # nothing was dropped
    finally:
        reader.close()


def test_reader_is_read_only(lists_path: Path) -> None:
    """The reader's connection refuses writes, so serving can never modify a release's lists."""
    reader = PrecomputedLists(lists_path)
    try:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reader._read("INSERT INTO lists VALUES ('x', '[]')")
        assert reader.get("x") is None
    finally:
        reader.close()


def test_reader_does_not_create_a_missing_file(tmp_path: Path) -> None:
    """Opening a lists file that does not exist fails instead of creating an empty database."""
    missing = tmp_path / "missing.sqlite"
    with pytest.raises(sqlite3.OperationalError):
        PrecomputedLists(missing)
    assert not missing.exists()



POOL = {"text": [("a1", 1.0), ("p2", 0.8125), ("p3", 0.123456789012)], "image": []}


def test_pools_round_trip_and_carry(tmp_path: Path) -> None:
    """put_pool/pool keep every hit in order with its exact score (an empty vector list stays empty, not absent);
    an anchor without a pool is None; carry() copies pools like lists."""
    path = tmp_path / "lists.sqlite"
    writer = ListWriter(path)
    writer.put("a1", RANKED)
    writer.put_pool("a1", POOL)
    writer.close()
    reader = PrecomputedLists(path)
    try:
        assert reader.pool("a1") == POOL
        assert reader.pool("a2") is None
    finally:
        reader.close()
    copy = tmp_path / "next.sqlite"
    writer = ListWriter(copy)
    assert writer.carry(path, ["a1", "a2"], "pools") == 1
    writer.close()
    again = PrecomputedLists(copy)
    try:
        assert again.pool("a1") == POOL
    finally:
        again.close()


def test_a_release_written_before_pools_has_none(tmp_path: Path) -> None:
    """A lists file without the ``pools`` table (an older release) reads as "no pool" for every anchor."""
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript("CREATE TABLE lists (anchor_id TEXT PRIMARY KEY, items TEXT NOT NULL);"
                         "CREATE TABLE items (product_id TEXT PRIMARY KEY, view TEXT NOT NULL);")
        db.execute("INSERT INTO lists VALUES ('a1', '[]')")
    db.close()
    reader = PrecomputedLists(path)
    try:
        assert reader.get("a1") == [] and reader.pool("a1") is None and list(reader.rows("pools")) == []
    finally:
        reader.close()
    writer = ListWriter(tmp_path / "next.sqlite")
    try:
        assert writer.carry(path, ["a1"], "pools") == 0 and writer.carry(path, ["a1"]) == 1
    finally:
        writer.close()


def test_resident_views_carry_their_text_and_image_vectors_bit_for_bit(tmp_path: Path) -> None:
    """resident() gives the snapshot with its stored text and image vectors (float32, exact, writable); the
    behavior vector is not kept (the API uses the model's own); a product without a vector row is not resident, and
    a carried vector row travels with its snapshot."""
    rng = np.random.default_rng(3)
    text, image = rng.standard_normal(384).astype(np.float32), rng.standard_normal(512).astype(np.float32)
    full = ItemView(**{**VIEW.__dict__, "product_id": "p7", "vectors": {"text": text, "image": image,
                                                                       "behavior": np.ones(8, np.float32)}})
    no_image = ItemView(**{**VIEW.__dict__, "product_id": "p8", "vectors": {"text": text}})
    path = tmp_path / "a.sqlite"
    write_lists(path, {}, [full, no_image])
    reader = PrecomputedLists(path)
    try:
        got = reader.resident(["p7", "p8", "missing"])
    finally:
        reader.close()
    assert set(got) == {"p7", "p8"} and got["p7"] == full
    assert set(got["p7"].vectors) == {"text", "image"} and set(got["p8"].vectors) == {"text"}
    for name, want in (("text", text), ("image", image)):
        vector = got["p7"].vectors[name]
        assert vector.dtype == np.float32 and vector.tobytes() == want.tobytes() and vector.flags.writeable
    writer = ListWriter(tmp_path / "b.sqlite")
    try:
        assert writer.carry(path, ["p7"], "items") == 1
        assert writer.carry(path, ["p7"], "vectors") == 1
    finally:
        writer.close()
    carried = PrecomputedLists(tmp_path / "b.sqlite")
    try:
        assert set(carried.resident(["p7", "p8"])) == {"p7"}
        assert carried.resident(["p7"])["p7"].vectors["image"].tobytes() == image.tobytes()
    finally:
        carried.close()


def test_a_release_written_before_vectors_has_no_resident_views(tmp_path: Path) -> None:
    """An older lists file (no ``vectors`` table) serves snapshots but no resident views; carrying from it copies 0."""
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript("CREATE TABLE lists (anchor_id TEXT PRIMARY KEY, items TEXT NOT NULL);"
                     "CREATE TABLE items (product_id TEXT PRIMARY KEY, view TEXT NOT NULL);")
    db.execute("INSERT INTO items VALUES (?, ?)", ("p1", view_json(VIEW)))
    db.commit()
    db.close()
    reader = PrecomputedLists(path)
    try:
        assert reader.resident(["p1"]) == {} and set(reader.views(["p1"])) == {"p1"}
        assert list(reader.rows("vectors")) == []
    finally:
        reader.close()
    writer = ListWriter(tmp_path / "new.sqlite")
    try:
        assert writer.carry(path, ["p1"], "vectors") == 0
    finally:
        writer.close()


def test_readers_on_many_threads_read_at_once_and_close_ends_them(lists_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Four threads are inside their queries at the same time, each on its own connection (a shared connection
    behind a lock would never let them meet), and give it back; after close() a read is refused."""
    import threading

    import recommender.ranking.precomputed as module

    inside = threading.Barrier(4)
    real_connect = module.connect

    class Waiting:
        def __init__(self, db: sqlite3.Connection) -> None:
            self.db = db

        def execute(self, *args: object) -> sqlite3.Cursor:
            inside.wait(timeout=30)  # raises BrokenBarrierError unless four queries run at once
            return self.db.execute(*args)  # type: ignore[arg-type]

        def close(self) -> None:
            self.db.close()

    reader = PrecomputedLists(lists_path)
    for db in reader._idle:
        db.close()
    reader._idle = []
    monkeypatch.setattr(module, "connect", lambda *a, **k: Waiting(real_connect(*a, **k)))
    results: list[object] = []
    threads = [threading.Thread(target=lambda: results.append(reader.get("a1"))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(results) == 4 and all(r is not None for r in results) and len(reader._idle) == 4
    reader.close()
    assert reader._idle == []
    with pytest.raises(sqlite3.ProgrammingError):
        reader.get("a1")
