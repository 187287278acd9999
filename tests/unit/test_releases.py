"""Release folders: atomic creation, the ``current`` pointer, the publication stack, rollback and staging cleanup."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from recommender import releases as releases_module
from recommender.releases import FINGERPRINTS, META, POPULARITY, Release, ReleaseError, ReleaseStore, write_meta


@pytest.fixture
def store(tmp_path: Path) -> ReleaseStore:
    return ReleaseStore(tmp_path / "releases")


def make_release(store: ReleaseStore, **meta: object) -> str:
    """Create one complete release (release.json written) and return its version."""
    with store.create() as (version, folder):
        (folder / "fusion.json").write_text("{}", encoding="utf-8")
        write_meta(folder, {"version": version, **meta})
    return version


def test_create_renames_completed_folder_into_place_and_lists_it(store: ReleaseStore) -> None:
    """A clean block ends with the folder under its version name, the staging folder gone, and the version listed."""
    with store.create() as (version, folder):
        assert folder.name == f".tmp-{version}"
        assert folder.is_dir()
        (folder / "fusion.json").write_text('{"kind": "fixed"}', encoding="utf-8")
        write_meta(folder, {"version": version, "collaborative_version": "c1"})
        assert store.versions() == []  # not visible while staging
    final = store.root / version
    assert final.is_dir()
    assert not folder.exists()
    assert (final / "fusion.json").read_text(encoding="utf-8") == '{"kind": "fixed"}'
    assert store.versions() == [version]
    release = store.load(version)
    assert release.meta["version"] == version
    assert release.collaborative_version == "c1"
    assert release.fusion_path == final / "fusion.json"
    assert release.lists_path == final / "lists.sqlite"


def test_create_block_that_raises_leaves_nothing(store: ReleaseStore) -> None:
    """An exception inside the block propagates and leaves neither a staging folder nor a listed version."""
    with pytest.raises(RuntimeError, match="boom"), store.create() as (version, folder):
        write_meta(folder, {"version": version})
        raise RuntimeError("boom")
    assert store.versions() == []
    assert not (store.root / version).exists()
    assert [p.name for p in store.root.iterdir()] == []


def test_create_without_meta_is_refused_and_leaves_nothing(store: ReleaseStore) -> None:
    """A block that never writes release.json raises ReleaseError and leaves no folder behind."""
    with pytest.raises(ReleaseError, match=r"release\.json missing"), store.create() as (version, folder):
        (folder / "fusion.json").write_text("{}", encoding="utf-8")
    assert store.versions() == []
    assert not (store.root / version).exists()
    assert list(store.root.iterdir()) == []


def test_two_creates_get_distinct_versions(store: ReleaseStore) -> None:
    """Releases made back to back (same second) get different names and are both listed, oldest first."""
    first = make_release(store)
    second = make_release(store)
    assert first != second
    assert store.versions() == [first, second]


def test_publish_sets_current_version(store: ReleaseStore) -> None:
    """Nothing is current before publishing; publish makes the version current and loadable by default."""
    version = make_release(store, gate={"publish": True})
    assert store.current_version() is None
    with pytest.raises(ReleaseError, match="no release published"):
        store.load()
    store.publish(version)
    assert store.current_version() == version
    assert store.load().version == version
    assert store.published() == [version]


def test_publish_unknown_version_raises_and_changes_nothing(store: ReleaseStore) -> None:
    """Publishing a version that does not exist is refused; the served release stays as it was."""
    version = make_release(store)
    store.publish(version)
    with pytest.raises(ReleaseError, match="r20000101T000000Z"):
        store.publish("r20000101T000000Z")
    assert store.current_version() == version
    assert store.published() == [version]


def test_publish_incomplete_folder_raises(store: ReleaseStore) -> None:
    """A folder with the right name but no release.json cannot be published."""
    (store.root / "r20240101T000000Z").mkdir(parents=True)
    with pytest.raises(ReleaseError):
        store.publish("r20240101T000000Z")
    assert store.current_version() is None


def test_publish_on_empty_store_raises(store: ReleaseStore) -> None:
    """With no root folder at all, publish raises ReleaseError (not FileNotFoundError)."""
    with pytest.raises(ReleaseError):
        store.publish("r20240101T000000Z")


def test_rollback_pops_the_publication_stack(store: ReleaseStore) -> None:
    """publish A, B, C → rollback → B → rollback → A → rollback raises (and A stays current)."""
    a, b, c = make_release(store), make_release(store), make_release(store)
    for v in (a, b, c):
        store.publish(v)
    assert store.current_version() == c
    assert store.published() == [a, b, c]
    assert store.rollback() == b
    assert store.current_version() == b
    assert store.rollback() == a
    assert store.current_version() == a
    with pytest.raises(ReleaseError, match="no earlier release"):
        store.rollback()
    assert store.current_version() == a


def test_rollback_with_nothing_published_raises(store: ReleaseStore) -> None:
    """Rollback before any publish raises ReleaseError."""
    make_release(store)
    with pytest.raises(ReleaseError):
        store.rollback()


def test_rollback_skips_deleted_releases(store: ReleaseStore) -> None:
    """A release on the stack whose folder is gone is skipped by rollback."""
    a, b, c = make_release(store), make_release(store), make_release(store)
    for v in (a, b, c):
        store.publish(v)
    (store.root / b / META).unlink()  # b is no longer a complete release
    assert store.rollback() == a
    assert store.current_version() == a


def test_republish_moves_version_to_top_of_stack(store: ReleaseStore) -> None:
    """Publishing an already published version moves it to the top instead of duplicating it."""
    a, b = make_release(store), make_release(store)
    store.publish(a)
    store.publish(b)
    store.publish(a)
    assert store.published() == [b, a]
    assert store.rollback() == b


def test_rollback_after_publish_interrupted_between_stack_and_pointer(store: ReleaseStore,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A publish killed after writing the stack but before moving ``current`` must not make rollback go forward."""
    a, b, c = make_release(store), make_release(store), make_release(store)
    store.publish(a)
    store.publish(b)

    def crash(version: str) -> None:
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(store.dir, "point", crash)
    with pytest.raises(KeyboardInterrupt):
        store.publish(c)
    monkeypatch.undo()
    assert store.current_version() == b  # c was never served
    assert store.rollback() == a


def test_clean_staging_removes_leftovers_only(store: ReleaseStore) -> None:
    """``.tmp-*`` folders and pointer temp files go; complete releases and the current pointer stay."""
    version = make_release(store)
    store.publish(version)
    (store.root / ".tmp-r20240101T000000Z").mkdir()
    (store.root / ".tmp-r20240101T000000Z" / "lists.sqlite").write_bytes(b"partial")
    (store.root / ".tmp-r20240102T000000Z").mkdir()
    (store.root / ".current-12345").write_text("x", encoding="utf-8")
    (store.root / ".published-12345").write_text("[]", encoding="utf-8")
    assert store.clean_staging() == 4
    assert sorted(p.name for p in store.root.iterdir()) == sorted([version, "current", "published.json"])
    assert store.current_version() == version
    assert store.clean_staging() == 0


def test_clean_staging_without_root_is_zero(store: ReleaseStore) -> None:
    """No releases folder yet: nothing to clean, no error."""
    assert store.clean_staging() == 0


def test_versions_ignore_incomplete_and_foreign_folders(store: ReleaseStore) -> None:
    """Only folders named like a version and holding release.json are listed."""
    version = make_release(store)
    (store.root / "r20240101T000000Z").mkdir()  # no release.json
    (store.root / ".tmp-r20240102T000000Z").mkdir()
    write_meta(store.root / ".tmp-r20240102T000000Z", {"version": "staged"})
    (store.root / "notaversion").mkdir()
    write_meta(store.root / "notaversion", {})
    (store.root / "r20240103T000000Z").write_text("a file, not a folder", encoding="utf-8")
    assert store.versions() == [version]
    with pytest.raises(ReleaseError):
        store.load("r20240101T000000Z")


def test_versions_on_missing_root_is_empty(store: ReleaseStore) -> None:
    """A store whose folder does not exist lists nothing and has no current version."""
    assert store.versions() == []
    assert store.current_version() is None
    assert store.published() == []


def test_versions_oldest_first_with_many_in_one_second(store: ReleaseStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Eleven-plus releases created within one second are still listed in creation order."""
    frozen = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)

    class FrozenClock(datetime):
        @classmethod
        def now(cls, tz: object = None) -> FrozenClock:  # type: ignore[override]
            return frozen  # type: ignore[return-value]

    monkeypatch.setattr(releases_module, "datetime", FrozenClock)
    created = [make_release(store) for _ in range(12)]
    assert created[0] == "r20240501T120000Z" and created[-1] == "r20240501T120000Z-11"
    assert store.versions() == created


def test_in_data_dir_location(tmp_path: Path) -> None:
    """The default store lives under <data_dir>/models/releases."""
    assert ReleaseStore.in_data_dir(tmp_path).root == tmp_path / "models" / "releases"


def test_write_meta_is_json_with_non_json_values_stringified(tmp_path: Path) -> None:
    """write_meta writes sorted JSON; values like Path are written as strings."""
    write_meta(tmp_path, {"b": 1, "a": tmp_path / "x"})
    data = json.loads((tmp_path / META).read_text(encoding="utf-8"))
    assert data == {"a": str(tmp_path / "x"), "b": 1}


def test_release_popularity_and_fingerprints_round_trip(store: ReleaseStore) -> None:
    """popularity() and fingerprints() read back what the refresh writes into the folder."""
    popularity = {"p1": 3.0, "p2": 1.5}
    recent = {"p1": 0.5}
    fingerprints = {"p1": "abcd", "p2": "ef01"}
    with store.create() as (version, folder):
        (folder / POPULARITY).write_text(json.dumps({"popularity": popularity, "recent_popularity": recent}),
                                         encoding="utf-8")
        (folder / FINGERPRINTS).write_text(json.dumps(fingerprints), encoding="utf-8")
        write_meta(folder, {"version": version})
    release = store.load(version)
    assert release.popularity() == (popularity, recent)
    assert release.fingerprints() == fingerprints


def test_release_popularity_and_fingerprints_absent(tmp_path: Path) -> None:
    """Without the files, popularity() is None and fingerprints() is {}; collaborative_version is None."""
    release = Release("r20240101T000000Z", tmp_path, {})
    assert release.popularity() is None
    assert release.fingerprints() == {}
    assert release.collaborative_version is None
