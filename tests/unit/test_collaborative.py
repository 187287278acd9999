"""ALS on a seeded pattern whose answer is known by construction, and versioned artifacts without pickle."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from recommender.behaviour.als import ArtifactStore, CollaborativeModel, ModelNotFound, fit_als
from recommender.behaviour.cooccurrence import build_cooccurrence
from recommender.config import CollaborativeSettings
from recommender.events.interactions import build_interactions
from recommender.events.log import Event

# Two latent groups need few factors; strong regularisation keeps ALS from fitting within-block noise.
CFG = CollaborativeSettings(factors=4, iterations=15, regularization=1.0, seed=3, threads=1)
BLOCK_A = [f"a{i}" for i in range(6)]
BLOCK_B = [f"b{i}" for i in range(6)]
T_END = datetime(2024, 1, 10, tzinfo=UTC)  # the fits' clock: just after the last event


def two_groups(seed: int = 0) -> list[Event]:
    """Users of group A view/buy only block-A items, group B only block-B items."""
    rng = np.random.default_rng(seed)
    t0, events = datetime(2024, 1, 1, tzinfo=UTC), []
    for group, items in (("A", BLOCK_A), ("B", BLOCK_B)):
        for u in range(20):
            for j, item in enumerate(rng.choice(items, size=4, replace=False)):
                kind = "purchase" if j == 0 else "view"
                events.append(Event(f"{group}{u}", str(item), kind, t0 + timedelta(hours=u * 10 + j), f"{group}{u}"))
    return events


@pytest.fixture(scope="module")
def model() -> CollaborativeModel:
    with threadpool_limits(1, "blas"):
        return fit_als(build_interactions(two_groups(), CFG, reference=T_END), CFG)


def test_similar_items_stay_in_their_block(model: CollaborativeModel) -> None:
    for anchor in BLOCK_A + BLOCK_B:
        block = BLOCK_A if anchor.startswith("a") else BLOCK_B
        similar = [pid for pid, _ in model.similar_items(anchor, 5)]
        assert len(similar) == 5 and anchor not in similar and set(similar) <= set(block), (anchor, similar)


def test_a_user_gets_recommendations_from_their_group(model: CollaborativeModel) -> None:
    seen = {"a0", "a1"}
    recs = model.recommend("A3", 4, exclude=frozenset(seen))
    assert len(recs) == 4 and all(pid.startswith("a") for pid, _ in recs) and not seen & {p for p, _ in recs}
    assert model.recommend("nobody", 3) == [] and model.similar_items("nothing", 3) == []


def test_behaviour_vectors_are_unit_float32_and_fits_are_reproducible(model: CollaborativeModel) -> None:
    vecs = model.behaviour_vectors()
    assert set(vecs) == set(BLOCK_A + BLOCK_B)
    for v in vecs.values():
        assert v.dtype == np.float32 and v.shape == (CFG.factors,) and abs(float(np.linalg.norm(v)) - 1) < 1e-5
    with threadpool_limits(1, "blas"):
        again = fit_als(build_interactions(two_groups(), CFG, reference=T_END), CFG)
    assert np.allclose(again.item_factors, model.item_factors, atol=1e-5)
    within = [float(vecs["a0"] @ vecs[p]) for p in BLOCK_A[1:]]
    across = [float(vecs["a0"] @ vecs[p]) for p in BLOCK_B]
    assert min(within) > max(across)


def test_save_load_round_trip_without_pickle_and_atomic_current(model: CollaborativeModel, tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "collab")
    with pytest.raises(ModelNotFound):
        store.load()
    co = build_cooccurrence([("s", [("a0", "view"), ("a1", "purchase")])], model.items)
    v1 = store.save(model, co, {"events": 160})
    assert store.current_version() == v1 and store.versions() == [v1]
    loaded = store.load()
    assert loaded.version == v1 and loaded.meta["events"] == 160 and loaded.meta["data_hash"] == model.data_hash
    assert np.array_equal(loaded.model.item_factors, model.item_factors)
    assert np.array_equal(loaded.model.user_factors, model.user_factors)
    assert loaded.model.items == model.items and loaded.model.users == model.users
    assert loaded.model.params == model.params and loaded.cooccurrence.count("a0", "a1") == 1
    folder = tmp_path / "collab" / v1
    for npz in folder.glob("*.npz"):
        with np.load(npz, allow_pickle=False) as z:
            assert all(z[k].dtype != object for k in z.files)
    json.loads((folder / "meta.json").read_text())

    v2 = store.save(replace(model, data_hash="ffffffff00"), co, {}, publish=False)
    assert store.current_version() == v1 and store.versions() == sorted([v1, v2])
    store.publish(v2)
    assert store.load().version == v2
    store.publish(v1)  # roll back
    assert store.current_version() == v1
    with pytest.raises(ModelNotFound):
        store.publish("20000101T000000Z-deadbeef")
    assert not list((tmp_path / "collab").glob(".tmp-*")) and not list((tmp_path / "collab").glob(".current-*"))


def test_top_is_a_stable_sorts_head_with_ties_and_unscored_items(model: CollaborativeModel) -> None:
    """``_top`` (sorting only the head) equals a stable argsort's first n: ties in index order, -inf left out."""
    rng = np.random.default_rng(7)
    size = len(model.items)
    for trial in range(30):
        scores = rng.integers(0, 4, size).astype(np.float64)  # many ties
        scores[rng.choice(size, trial % 5, replace=False)] = -np.inf
        for n in (1, 3, size, size + 5):
            finite = int(np.isfinite(scores).sum())
            want = np.argsort(-scores, kind="stable")[: min(n, finite)]
            assert model._top(scores, n) == [(model.items.id(int(j)), float(scores[j])) for j in want]
    assert model._top(np.full(size, -np.inf), 3) == []
