"""The store's behaviour vectors: the published ALS model's item factors, written by `recsys train`, the
refresh and `recsys releases` (a release switch rewrites them)."""

from __future__ import annotations

from dataclasses import dataclass

from tqdm import tqdm

from recommender.behaviour.als import ArtifactStore, CollaborativeModel
from recommender.domain import BEHAVIOUR_VECTOR
from recommender.errors import StoreError
from recommender.releases import ReleaseStore
from recommender.store.products import ProductStore

SYNCED = "behavior_synced"  # in the releases root: the collaborative version the store's behaviour vectors hold


@dataclass(frozen=True)
class VectorCounts:
    """What writing the behaviour vectors did."""

    written: int = 0
    cleared: int = 0
    not_in_store: int = 0


def write_behaviour_vectors(store: ProductStore, model: CollaborativeModel, refit: bool,
                            progress: bool) -> VectorCounts:
    """Set the behaviour vector on stored products the model knows; remove it from those it no longer knows."""
    store.ensure_collection()
    stored = set(store.iter_ids())
    have = store.ids_with_vector(BEHAVIOUR_VECTOR)
    vectors = model.behaviour_vectors()
    _check_dimension(store, have, model.item_factors.shape[1])
    todo = sorted(pid for pid in vectors if pid in stored and (refit or pid not in have))
    for pid in tqdm(todo, unit="product", desc="behavior vectors", disable=not progress):
        store.set_vector(BEHAVIOUR_VECTOR, {pid: vectors[pid]})
    cleared = store.clear_vector(BEHAVIOUR_VECTOR, sorted(have - set(vectors)))
    return VectorCounts(len(todo), cleared, len(set(vectors) - stored))


def _check_dimension(store: ProductStore, have: set[str], dim: int) -> None:
    """Weaviate fixes a named vector's length; a model with another factor count cannot be written over it."""
    if not have:
        return
    sample = next(iter(sorted(have)))
    stored = store.vectors([sample], names=[BEHAVIOUR_VECTOR]).get(sample, {}).get(BEHAVIOUR_VECTOR)
    if stored is not None and len(stored) != dim:
        raise StoreError(f"stored {BEHAVIOUR_VECTOR} vectors have {len(stored)} dimensions but the model has {dim} "
                         f"(collaborative.factors changed): set it back to {len(stored)}, or rebuild the "
                         "collection (`recsys vectorize --rebuild`) and train again")


def sync_behaviour(store: ProductStore, releases: ReleaseStore, artifacts: ArtifactStore, progress: bool) -> None:
    """Set the store's behaviour vectors from the served release's ALS model (cleared for a release without one),
    unless the marker says they already hold that model. The marker is written after the last vector."""
    release = releases.load()
    marker = releases.root / SYNCED
    want = release.collaborative_version or "-"
    if marker.is_file() and marker.read_text(encoding="utf-8").strip() == want:
        return
    marker.unlink(missing_ok=True)
    if release.collaborative_version is None:
        store.clear_vector(BEHAVIOUR_VECTOR, sorted(store.ids_with_vector(BEHAVIOUR_VECTOR)))
    else:
        model = artifacts.load(release.collaborative_version).model
        write_behaviour_vectors(store, model, True, progress)
    marker.write_text(want + "\n", encoding="utf-8")
