"""The collaborative model: implicit ALS on the weighted interaction matrix (the only module importing ``implicit``).

``fit_als`` learns user and item factors; ``CollaborativeModel`` answers with external ids (similar items,
recommendations for a known user) and gives each trained item its ``behavior`` vector (L2-normalised
float32 item factors). ``ArtifactStore`` keeps versions under ``<root>/<version>/`` — factors as npz,
id maps, params, data hash and metrics as JSON, never pickle — and publishes one atomically through
the ``current`` pointer (``recommender.artifacts``), so readers switch without restart and can roll back.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from implicit.cpu.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

from recommender.artifacts import VersionedDir
from recommender.behaviour.cooccurrence import CoOccurrence
from recommender.config import CollaborativeSettings
from recommender.errors import RecommenderError
from recommender.events.interactions import IdMap, Interactions

FORMAT = 1
_VERSION_RE = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}(-[0-9]+)?$")


class ModelNotFound(RecommenderError):
    """No (such) collaborative model version has been published."""


@dataclass(frozen=True)
class CollaborativeModel:
    """Learned factors with the id maps that translate them; ``trained`` marks items that had interactions."""

    user_factors: np.ndarray
    item_factors: np.ndarray
    users: IdMap
    items: IdMap
    trained: np.ndarray  # bool per item
    params: Mapping[str, Any] = field(default_factory=dict)
    data_hash: str = ""

    @cached_property
    def unit_item_factors(self) -> np.ndarray:
        """L2-normalised float32 item factors (computed once per loaded model)."""
        return _normalised(self.item_factors)

    def behaviour_vectors(self) -> dict[str, np.ndarray]:
        """L2-normalised float32 item factors of every trained item (the ``behavior`` named vector)."""
        unit = self.unit_item_factors
        return {self.items.id(int(i)): unit[i] for i in np.flatnonzero(self.trained)}

    def similar_items(self, product_id: str, n: int = 10) -> list[tuple[str, float]]:
        """The ``n`` trained items whose factors are closest (cosine) to ``product_id``'s, itself excluded."""
        i = self.items.index(product_id)
        if i is None or not self.trained[i]:
            return []
        unit = self.unit_item_factors
        scores = unit @ unit[i]
        scores[~self.trained] = -np.inf
        scores[i] = -np.inf
        return self._top(scores, n)

    def recommend(self, user_id: str, n: int = 10, exclude: frozenset[str] = frozenset()) -> list[tuple[str, float]]:
        """The ``n`` trained items with the highest predicted preference of a known user (``exclude`` left out)."""
        u = self.users.index(user_id)
        if u is None:
            return []
        scores = (self.item_factors @ self.user_factors[u]).astype(np.float64)
        scores[~self.trained] = -np.inf
        for pid in exclude:
            j = self.items.index(pid)
            if j is not None:
                scores[j] = -np.inf
        return self._top(scores, n)

    def _top(self, scores: np.ndarray, n: int) -> list[tuple[str, float]]:
        """The ``n`` best finite scores, best first, ties in index order (a stable sort's top ``n``): only the items
        at or above the ``n``-th best are sorted, not the whole catalog (this runs on every "for you" request)."""
        n = min(n, int(np.isfinite(scores).sum()))
        if n <= 0:
            return []
        negated = -scores
        threshold = np.partition(negated, n - 1)[n - 1]
        head = np.flatnonzero(negated <= threshold)  # every tie at the threshold, in index order
        order = head[np.argsort(negated[head], kind="stable")][:n]
        ids = self.items.id
        return [(ids(j), s) for j, s in zip(order.tolist(), scores[order].tolist(), strict=True)]


def _normalised(factors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(factors, axis=1, keepdims=True)
    return np.asarray(factors / np.where(norms > 0, norms, 1.0), dtype=np.float32)


def model_params(settings: CollaborativeSettings) -> dict[str, Any]:
    """The settings that determine a fit (recorded with the artifacts, compared to skip unchanged work)."""
    return {k: v for k, v in asdict(settings).items() if k != "threads"}


def fit_als(interactions: Interactions, settings: CollaborativeSettings, progress: bool = False
            ) -> CollaborativeModel:
    """Fit ALS (confidence ``1 + alpha · value``) on the user×item matrix; deterministic for a given seed."""
    matrix = interactions.matrix
    if matrix.nnz == 0:
        raise RecommenderError("no interactions to train on")
    # implicit takes each stored value as the confidence itself (alpha only scales it), and a value below 1
    # would act as negative feedback; so we pass Hu–Koren's 1 + alpha·value and leave implicit's alpha at 1.
    confidence = matrix.astype(np.float32, copy=True)
    confidence.data = 1.0 + np.float32(settings.alpha) * confidence.data
    # implicit parallelises itself: BLAS's own threads would only fight it (and implicit warns about them)
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(
            factors=settings.factors, regularization=settings.regularization, alpha=1.0,
            iterations=settings.iterations, random_state=settings.seed, num_threads=settings.threads,
            calculate_training_loss=False)
        model.fit(confidence, show_progress=progress)
    trained = np.asarray((matrix != 0).sum(axis=0)).ravel() > 0
    return CollaborativeModel(
        np.asarray(model.user_factors, dtype=np.float32), np.asarray(model.item_factors, dtype=np.float32),
        interactions.users, interactions.items, trained, model_params(settings), interactions.data_hash)


# ------------------------------------------------------------------------------------------- artifacts
@dataclass(frozen=True)
class Artifacts:
    """One published version: the ALS model, the co-occurrence counts and the recorded metadata."""

    version: str
    model: CollaborativeModel
    cooccurrence: CoOccurrence
    meta: Mapping[str, Any]


class ArtifactStore:
    """Versioned collaborative artifacts under ``root`` with an atomic ``current`` pointer."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dir = VersionedDir(root, _VERSION_RE)

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> ArtifactStore:
        """The default place, ``<data_dir>/models/collaborative``."""
        return cls(data_dir / "models" / "collaborative")

    def versions(self) -> list[str]:
        """Saved versions, oldest first."""
        return self.dir.versions()

    def current_version(self) -> str | None:
        """The published version, or None."""
        return self.dir.current()

    def save(self, model: CollaborativeModel, cooccurrence: CoOccurrence, meta: Mapping[str, Any],
             publish: bool = True) -> str:
        """Write a new version aside, rename it into place, and (when ``publish``) point ``current`` at it."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        version = self.dir.new_version(f"{stamp}-{(model.data_hash or '0' * 8)[:8]}")
        with self.dir.staging(version) as tmp:
            _write_model(tmp, model)
            cooccurrence.save(tmp)
            record = {"format": FORMAT, "version": version, "params": dict(model.params),
                      "data_hash": model.data_hash, **meta}
            (tmp / "meta.json").write_text(json.dumps(record, indent=2, sort_keys=True), encoding="utf-8")
            self.dir.commit(tmp, version)
        if publish:
            self.publish(version)
        return version

    def publish(self, version: str) -> None:
        """Atomically make ``version`` the current one (also how to roll back)."""
        if version not in self.versions():
            raise ModelNotFound(f"no collaborative model version {version!r} in {self.root}")
        self.dir.point(version)

    def load(self, version: str | None = None) -> Artifacts:
        """A saved version (default: the current one)."""
        version = version or self.current_version()
        if version is None:
            raise ModelNotFound(f"no collaborative model published in {self.root} (run `recsys train`)")
        folder = self.root / version
        if not folder.is_dir():
            raise ModelNotFound(f"no collaborative model version {version!r} in {self.root}")
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        return Artifacts(version, _read_model(folder, meta), CoOccurrence.load(folder), meta)


def _write_model(folder: Path, model: CollaborativeModel) -> None:
    np.savez(folder / "factors.npz", allow_pickle=False, user_factors=model.user_factors,
             item_factors=model.item_factors, trained=model.trained)
    ids = {"users": list(model.users.ids), "items": list(model.items.ids)}
    (folder / "ids.json").write_text(json.dumps(ids), encoding="utf-8")


def _read_model(folder: Path, meta: Mapping[str, Any]) -> CollaborativeModel:
    ids = json.loads((folder / "ids.json").read_text(encoding="utf-8"))
    with np.load(folder / "factors.npz", allow_pickle=False) as z:
        users, items, trained = z["user_factors"], z["item_factors"], z["trained"]
    return CollaborativeModel(users, items, IdMap(ids["users"]), IdMap(ids["items"]), trained,
                              dict(meta.get("params", {})), str(meta.get("data_hash", "")))
