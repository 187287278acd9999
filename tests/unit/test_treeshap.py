"""The tabulated tree SHAP values against LightGBM's own ``pred_contrib`` on seeded random models."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

import recommender.ranking.treeshap as treeshap
from recommender.ranking.ltr import RankingRows, TreeRanker
from recommender.ranking.treeshap import LeafShap

N_FEATURES = 7


def booster(seed: int, rows: np.ndarray | None = None, **params: object) -> lgb.Booster:
    """A lambdarank model whose labels depend on interactions, repeated splits on one feature and a noise column."""
    rng = np.random.default_rng(seed)
    x = rng.random((600, N_FEATURES)) if rows is None else rows
    y = ((x[:, 0] > 0.5) ^ (x[:, 1] > 0.3)) | ((x[:, 2] > 0.2) & (x[:, 2] < 0.4)) | (np.nan_to_num(x[:, 3]) > 0.9)
    config = {"objective": "lambdarank", "num_leaves": 15, "min_data_in_leaf": 5, "learning_rate": 0.3,
              "num_threads": 1, "seed": seed, "deterministic": True, "verbosity": -1, **params}
    data = lgb.Dataset(x, label=y.astype(int), group=[20] * 30)
    return lgb.train(config, data, num_boost_round=25)


def probe_rows(model: lgb.Booster, seed: int) -> np.ndarray:
    """Random rows, plus rows sitting exactly on the model's thresholds (``<=`` goes left) and all-zero rows."""
    rng = np.random.default_rng(seed)
    rows = rng.random((200, N_FEATURES)) * 1.2 - 0.1
    thresholds = [(node["split_feature"], node["threshold"]) for tree in model.dump_model()["tree_info"]
                  for node in _splits(tree["tree_structure"])]
    for i, (feature, threshold) in enumerate(thresholds[:100]):
        rows[i, feature] = threshold
    rows[-5:] = 0.0
    return rows


def _splits(node: dict) -> list[dict]:
    if "leaf_value" in node:
        return []
    return [node, *_splits(node["left_child"]), *_splits(node["right_child"])]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_tables_give_lightgbms_tree_shap_values(seed: int) -> None:
    model = booster(seed)
    tables = LeafShap.build(model.dump_model())
    assert tables is not None
    rows = probe_rows(model, seed + 10)
    expected = model.predict(rows, pred_contrib=True, num_threads=1)
    got = tables.contributions(rows)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() < 1e-9
    assert np.allclose(got.sum(axis=1), model.predict(rows, raw_score=True, num_threads=1))


def test_a_row_gets_the_same_values_alone_or_in_a_batch() -> None:
    tables = LeafShap.build(booster(0).dump_model())
    assert tables is not None
    rows = probe_rows(booster(0), 3)[:40]
    together = tables.contributions(rows)
    assert all(np.array_equal(tables.contributions(rows[i:i + 1])[0], together[i]) for i in range(len(rows)))


def test_nan_reads_as_zero_like_lightgbm() -> None:
    model = booster(1)
    tables = LeafShap.build(model.dump_model())
    assert tables is not None
    rows = probe_rows(model, 4)[:20]
    rows[::2, 0] = np.nan
    assert np.abs(tables.contributions(rows) - model.predict(rows, pred_contrib=True, num_threads=1)).max() < 1e-9


def test_models_the_tables_do_not_cover_get_none() -> None:
    rng = np.random.default_rng(5)
    with_missing = rng.random((600, N_FEATURES))
    with_missing[rng.random(600) < 0.3, 3] = np.nan  # splits on column 3 learn a missing-value direction
    model = booster(5, with_missing)
    assert any(node["missing_type"] == "NaN" for tree in model.dump_model()["tree_info"]
               for node in _splits(tree["tree_structure"]))
    assert LeafShap.build(model.dump_model()) is None


def test_a_model_over_the_table_budget_gets_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(treeshap, "MAX_TABLE", 10)
    assert LeafShap.build(booster(0).dump_model()) is None


def test_a_tree_ranker_falls_back_to_lightgbm_where_the_tables_do_not_reach() -> None:
    rng = np.random.default_rng(6)
    with_missing = rng.random((600, N_FEATURES))
    with_missing[rng.random(600) < 0.3, 3] = np.nan
    model = booster(6, with_missing)
    ranker = TreeRanker(model, [f"f{i}" for i in range(N_FEATURES)])
    rows = RankingRows(with_missing[:30], np.zeros(30), np.array([30])).rows
    expected = model.predict(rows, pred_contrib=True, num_threads=1)
    assert np.allclose(ranker.contributions(rows), expected[:, :-1])
    assert np.allclose(ranker.bias(rows), expected[:, -1])


def test_single_leaf_trees_only_move_the_bias() -> None:
    model = booster(7, min_data_in_leaf=1000)  # no split has enough rows: every tree is one leaf
    tables = LeafShap.build(model.dump_model())
    assert tables is not None
    rows = probe_rows(model, 8)[:10]
    got = tables.contributions(rows)
    assert np.all(got[:, :-1] == 0.0)
    assert np.allclose(got[:, -1], model.predict(rows, raw_score=True, num_threads=1))
