"""Learning to rank: gradient-boosted trees (LightGBM lambdarank) over the fusion features.

The only importer of ``lightgbm``. A ``TreeRanker`` scores candidate rows like the linear ``FusionModel`` does
(``predict`` for the order, ``contributions`` for the per-feature breakdown), so the ranker, the gate and the
explanations treat both alike. Contributions are tree SHAP values (``pred_contrib``): per row they sum, with the
model's bias, to the raw score; they come from per-leaf tables (``treeshap``), LightGBM's own ``pred_contrib`` for
a model those do not cover. Saved without pickle: LightGBM's own text model plus a JSON sidecar naming the
features and the format version; a model trained on other features refuses to load.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from recommender.errors import RecommenderError
from recommender.ranking.features import FEATURES
from recommender.ranking.treeshap import LeafShap

if TYPE_CHECKING:
    import lightgbm as lgb

FORMAT_VERSION = 1  # of the sidecar
NAME = "ltr"  # the product-page model; the "for you" one is saved as "ltr_user"
MODEL_FILE = f"{NAME}.txt"
SIDECAR_FILE = f"{NAME}.json"


def _lightgbm() -> Any:
    """lightgbm, imported on first use (it pulls in scikit-learn and pandas: seconds a worker without trees
    need not spend)."""
    import lightgbm

    return lightgbm


@dataclass(frozen=True)
class LtrParams:
    """LightGBM lambdarank settings (small trees, shrinkage, early stopping on the newest inner fold)."""

    rounds: int = 400
    learning_rate: float = 0.05
    num_leaves: int = 15
    min_data_in_leaf: int = 50
    feature_fraction: float = 0.8
    bagging_fraction: float = 0.8
    lambda_l2: float = 1.0
    early_stopping: int = 40
    eval_at: int = 10
    threads: int = 1
    negatives: int = 100  # irrelevant candidates sampled per training query (0 = all): trains several times faster


DEFAULT_PARAMS = LtrParams()


@dataclass(frozen=True)
class RankingRows:
    """Labelled candidate rows of many queries: rows (n, d), 0/1 labels (n,), and the row count per query."""

    rows: np.ndarray
    labels: np.ndarray
    groups: np.ndarray

    def with_positives(self) -> RankingRows:
        """Only the queries that have a relevant candidate (the others carry no ranking gradient)."""
        bounds = np.concatenate([[0], np.cumsum(self.groups)])
        keep = [i for i in range(len(self.groups)) if self.labels[bounds[i]:bounds[i + 1]].any()]
        if not keep:
            return RankingRows(self.rows[:0], self.labels[:0], self.groups[:0])
        idx = np.concatenate([np.arange(bounds[i], bounds[i + 1]) for i in keep])
        return RankingRows(self.rows[idx], self.labels[idx], self.groups[keep])

    def sample_negatives(self, negatives: int, seed: int = 0) -> RankingRows:
        """Every relevant row and at most ``negatives`` irrelevant ones per query (order kept); 0 keeps all."""
        if negatives <= 0:
            return self
        rng = np.random.default_rng(seed)
        keep: list[np.ndarray] = []
        sizes = []
        start = 0
        for size in self.groups:
            idx = np.arange(start, start + size)
            pos, neg = idx[self.labels[idx] > 0], idx[self.labels[idx] == 0]
            if len(neg) > negatives:
                neg = rng.choice(neg, negatives, replace=False)
            chosen = np.sort(np.concatenate([pos, neg]))
            keep.append(chosen)
            sizes.append(len(chosen))
            start += size
        idx = np.concatenate(keep) if keep else np.zeros(0, dtype=np.int64)
        return RankingRows(self.rows[idx], self.labels[idx], np.array(sizes, dtype=np.int64))


class TreeRanker:
    """A LightGBM ranking model over FEATURES; ``kind`` is "ltr"."""

    kind = "ltr"

    def __init__(self, booster: lgb.Booster, features: Sequence[str] = FEATURES,
                 meta: Mapping[str, Any] | None = None) -> None:
        self.booster = booster
        self.features = tuple(features)
        self.meta = dict(meta or {})

    def predict(self, rows: np.ndarray) -> np.ndarray:
        """Raw scores (n,) of feature rows (n, d): one batched call, one thread (a request is ~100–300 rows)."""
        if len(rows) == 0:
            return np.zeros(0)
        return np.asarray(self.booster.predict(np.asarray(rows, dtype=np.float64), raw_score=True, num_threads=1))

    def contributions(self, rows: np.ndarray) -> np.ndarray:
        """Tree SHAP contribution of every feature (n, d); each row sums to its raw score minus ``bias``."""
        return self._shap(rows)[:, :-1]

    def bias(self, rows: np.ndarray) -> np.ndarray:
        """The expected raw score the contributions start from (one value per row; equal for all rows)."""
        return self._shap(rows)[:, -1]

    def score(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scores (n,) and per-feature contributions (n, d) — the FusionModel interface."""
        shap = self._shap(rows)
        return shap.sum(axis=1), shap[:, :-1]

    def _shap(self, rows: np.ndarray) -> np.ndarray:
        if len(rows) == 0:
            return np.zeros((0, len(self.features) + 1))
        if self.shap_tables is not None:
            return self.shap_tables.contributions(rows)
        out = self.booster.predict(np.asarray(rows, dtype=np.float64), pred_contrib=True, num_threads=1)
        return np.asarray(out, dtype=np.float64)

    @cached_property
    def shap_tables(self) -> LeafShap | None:
        """The model's tree SHAP tables, built on first use (a model only trained and saved never needs them); None
        when they do not cover it (then LightGBM computes the values)."""
        return LeafShap.build(self.booster.dump_model())

    def to_json(self) -> dict[str, Any]:
        """The JSON sidecar: what the model expects and how it was trained (the trees are in the text model)."""
        return {"format": FORMAT_VERSION, "kind": self.kind, "features": list(self.features),
                "lightgbm": _lightgbm().__version__, "meta": self.meta}

    def save(self, folder: Path, name: str = NAME) -> None:
        """Write ``<name>.txt`` (LightGBM text format) and ``<name>.json`` into ``folder`` (each written aside, then
        renamed; the sidecar last, so a folder with a sidecar has its trees)."""
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f"{name}.txt.tmp"
        self.booster.save_model(str(tmp))
        tmp.replace(folder / f"{name}.txt")
        tmp = folder / f"{name}.json.tmp"
        tmp.write_text(json.dumps(self.to_json(), indent=2), encoding="utf-8")
        tmp.replace(folder / f"{name}.json")

    @classmethod
    def load(cls, folder: Path, name: str = NAME) -> TreeRanker:
        """Read a saved model; RecommenderError when it is absent, unreadable or trained on other features."""
        lgb = _lightgbm()
        try:
            sidecar = json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
            if sidecar.get("format") != FORMAT_VERSION:
                raise RecommenderError(f"ranking model format {sidecar.get('format')!r} is not {FORMAT_VERSION}")
            if tuple(sidecar["features"]) != FEATURES:
                raise RecommenderError("ranking model was trained on other features; retrain it")
            booster = lgb.Booster(model_file=str(folder / f"{name}.txt"))
        except (OSError, ValueError, KeyError, lgb.basic.LightGBMError) as exc:
            raise RecommenderError(f"cannot read ranking model in {folder}: {exc}") from exc
        if booster.num_feature() != len(FEATURES):
            raise RecommenderError(f"ranking model in {folder} has {booster.num_feature()} features, "
                                   f"not {len(FEATURES)}")
        ranker = cls(booster, FEATURES, sidecar.get("meta", {}))
        _ = ranker.shap_tables  # built now, not in a worker's first request
        return ranker


@dataclass(frozen=True)
class TrainReport:
    """How one ranking model was trained (kept in the sidecar's ``meta``)."""

    rounds: int
    train_queries: int
    train_rows: int
    valid_queries: int
    valid_ndcg: float | None
    seconds: float
    params: dict[str, Any] = field(default_factory=dict)


def train_ranker(train: RankingRows, valid: RankingRows | None = None, params: LtrParams = DEFAULT_PARAMS,
                 seed: int = 0) -> TreeRanker:
    """Lambdarank on ``train``; with ``valid`` (later queries), the round count is chosen by early stopping on its
    NDCG and the model is refitted on both with that many rounds."""
    lgb = _lightgbm()
    started = time.perf_counter()
    train = train.with_positives().sample_negatives(params.negatives, seed)
    if len(train.groups) == 0:
        raise RecommenderError("learning to rank needs queries with a relevant candidate")
    valid = valid.with_positives() if valid is not None else None
    config = _config(params, seed)
    rounds, valid_ndcg = params.rounds, None
    if valid is not None and len(valid.groups):
        booster = lgb.train({**config, "metric": "ndcg", "eval_at": [params.eval_at]}, _dataset(train),
                            num_boost_round=params.rounds, valid_sets=[_dataset(valid)],
                            callbacks=[lgb.early_stopping(params.early_stopping, verbose=False)])
        rounds = max(1, booster.best_iteration)
        valid_ndcg = float(booster.best_score["valid_0"][f"ndcg@{params.eval_at}"])
        train = RankingRows(np.vstack([train.rows, valid.rows]), np.concatenate([train.labels, valid.labels]),
                            np.concatenate([train.groups, valid.groups]))
    booster = lgb.train(config, _dataset(train), num_boost_round=rounds)
    report = TrainReport(rounds, len(train.groups), len(train.labels), len(valid.groups) if valid else 0, valid_ndcg,
                         round(time.perf_counter() - started, 2), asdict(params))
    return TreeRanker(booster, FEATURES, {"training": asdict(report)})


def _config(params: LtrParams, seed: int) -> dict[str, Any]:
    return {"objective": "lambdarank", "learning_rate": params.learning_rate, "num_leaves": params.num_leaves,
            "min_data_in_leaf": params.min_data_in_leaf, "feature_fraction": params.feature_fraction,
            "bagging_fraction": params.bagging_fraction, "bagging_freq": 1, "lambda_l2": params.lambda_l2,
            "num_threads": params.threads, "seed": seed, "deterministic": True, "force_row_wise": True,
            "verbosity": -1, "lambdarank_truncation_level": 20}


def _dataset(data: RankingRows) -> lgb.Dataset:
    return _lightgbm().Dataset(np.asarray(data.rows, dtype=np.float64), label=data.labels, group=data.groups,
                       feature_name=list(FEATURES), free_raw_data=True)
