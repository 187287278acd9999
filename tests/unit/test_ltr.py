"""Learning to rank on tiny seeded data where the right order is known by construction."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from recommender.errors import RecommenderError
from recommender.events.log import Event
from recommender.ranking.features import FEATURES
from recommender.ranking.fusion import FusionModel, configured_model, learn_model
from recommender.ranking.learn import InnerRows, shopper_tasks
from recommender.ranking.ltr import MODEL_FILE, SIDECAR_FILE, LtrParams, RankingRows, TreeRanker, train_ranker
from recommender.ranking.models import ReleaseModels
from recommender.ranking.ranker import signal_breakdown

D = len(FEATURES)
TEXT, IMAGE = FEATURES.index("text"), FEATURES.index("image")
PARAMS = LtrParams(rounds=60, learning_rate=0.2, num_leaves=4, min_data_in_leaf=5, early_stopping=20, threads=1)


def xor_queries(n_queries: int, per_query: int, seed: int) -> RankingRows:
    """Relevant = text and image agree (both high or both low): an interaction no linear model can fit."""
    rng = np.random.default_rng(seed)
    rows = np.zeros((n_queries * per_query, D))
    rows[:, TEXT] = rng.random(len(rows))
    rows[:, IMAGE] = rng.random(len(rows))
    rows[:, FEATURES.index("popularity")] = rng.random(len(rows))  # noise
    labels = ((rows[:, TEXT] > 0.5) == (rows[:, IMAGE] > 0.5)).astype(np.int8)
    return RankingRows(rows, labels, np.full(n_queries, per_query))


def ndcg_at(scores: np.ndarray, data: RankingRows, k: int = 5) -> float:
    """Mean NDCG@k over the queries of ``data`` for ``scores``."""
    out, start = [], 0
    for size in data.groups:
        s, y = scores[start:start + size], data.labels[start:start + size]
        order = np.argsort(-s, kind="stable")[:k]
        dcg = sum(1 / np.log2(i + 2) for i, j in enumerate(order) if y[j])
        ideal = sum(1 / np.log2(i + 2) for i in range(min(k, int(y.sum()))))
        out.append(dcg / ideal if ideal else 0.0)
        start += size
    return float(np.mean(out))


@pytest.fixture(scope="module")
def tree() -> TreeRanker:
    return train_ranker(xor_queries(60, 20, 1), xor_queries(20, 20, 2), PARAMS, seed=0)


def test_trees_rank_an_interaction_the_logistic_fusion_cannot(tree: TreeRanker) -> None:
    train, test = xor_queries(60, 20, 1), xor_queries(40, 20, 3)
    linear = learn_model(train.rows, train.labels)
    assert ndcg_at(tree.predict(test.rows), test) > 0.9
    assert ndcg_at(linear.predict(test.rows), test) < 0.75
    assert tree.meta["training"]["rounds"] >= 1 and tree.meta["training"]["valid_queries"] == 20


def test_contributions_sum_to_the_raw_score(tree: TreeRanker) -> None:
    rows = xor_queries(2, 50, 4).rows
    scores, contributions = tree.score(rows)
    assert np.allclose(scores, tree.predict(rows))
    assert np.allclose(contributions.sum(axis=1) + tree.bias(rows), tree.predict(rows))
    assert np.abs(contributions[:, [TEXT, IMAGE]]).sum() > 10 * np.abs(np.delete(contributions, [TEXT, IMAGE], 1)).sum()


def test_signal_breakdown_groups_a_sources_rank_into_its_signal() -> None:
    rows = np.zeros((1, D))
    rows[0, TEXT] = 0.8
    contributions = np.zeros((1, D))
    contributions[0, TEXT], contributions[0, FEATURES.index("rr_text")] = 0.5, 0.25
    contributions[0, FEATURES.index("text_gap")] = -0.125
    contributions[0, FEATURES.index("anchor_popularity")] = 1.0  # query context: no signal of its own
    signals = signal_breakdown(rows, contributions)[0]
    assert signals["text"] == 0.8 and signals["text_contribution"] == 0.625
    assert "rr_text" not in signals and "anchor_popularity_contribution" not in signals


def test_save_load_roundtrip_without_pickle(tree: TreeRanker, tmp_path: Path) -> None:
    tree.save(tmp_path)
    sidecar = json.loads((tmp_path / SIDECAR_FILE).read_text())
    assert sidecar["features"] == list(FEATURES) and sidecar["format"] == 1 and sidecar["kind"] == "ltr"
    assert (tmp_path / MODEL_FILE).read_text().startswith("tree")  # LightGBM's text format
    again = TreeRanker.load(tmp_path)
    rows = xor_queries(3, 10, 5).rows
    assert np.array_equal(again.predict(rows), tree.predict(rows))
    assert np.allclose(again.contributions(rows), tree.contributions(rows))


def test_a_model_on_other_features_refuses_to_load(tree: TreeRanker, tmp_path: Path) -> None:
    tree.save(tmp_path)
    sidecar = json.loads((tmp_path / SIDECAR_FILE).read_text())
    (tmp_path / SIDECAR_FILE).write_text(json.dumps({**sidecar, "features": sidecar["features"][:-1]}))
    with pytest.raises(RecommenderError, match="other features"):
        TreeRanker.load(tmp_path)


def test_no_relevant_candidate_anywhere_is_refused() -> None:
    data = xor_queries(4, 5, 6)
    with pytest.raises(RecommenderError, match="relevant"):
        train_ranker(RankingRows(data.rows, np.zeros_like(data.labels), data.groups), params=PARAMS)


def test_release_models_fall_back_to_the_logistic_fusion(tree: TreeRanker, tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    rows = xor_queries(1, 30, 7)
    logistic = learn_model(rows.rows, rows.labels)
    ReleaseModels(logistic, tree).save(tmp_path)
    assert ReleaseModels.load(tmp_path, "ltr").ranking("ltr").kind == "ltr"
    assert ReleaseModels.load(tmp_path, "logistic").ranking("logistic").kind == "learned"
    (tmp_path / MODEL_FILE).write_text("not a model")  # a failing load
    with caplog.at_level(logging.WARNING):
        models = ReleaseModels.load(tmp_path, "ltr")
    assert models.tree is None and models.ranking("ltr").kind == "learned"
    assert "cannot read ranking model" in caplog.text
    (tmp_path / SIDECAR_FILE).unlink()  # no trees at all
    assert ReleaseModels.load(tmp_path, "ltr").ranking("ltr").kind == "learned"


def test_an_unreadable_fusion_model_falls_back_to_the_configured_weights(tmp_path: Path) -> None:
    configured_model({"text": 1.0}).save(tmp_path / "fusion.json")
    data = json.loads((tmp_path / "fusion.json").read_text())
    (tmp_path / "fusion.json").write_text(json.dumps({**data, "features": data["features"][:3]}))
    with pytest.raises(RecommenderError):
        FusionModel.load(tmp_path / "fusion.json")
    assert ReleaseModels.load(tmp_path, "ltr").ranking("ltr").kind == "configured"
    with pytest.raises(RecommenderError, match=r"ranking\.model"):
        ReleaseModels(configured_model({})).ranking("forest")


def test_release_models_keep_the_shopper_trees_apart(tree: TreeRanker, tmp_path: Path) -> None:
    rows = xor_queries(1, 30, 8)
    logistic = learn_model(rows.rows, rows.labels)
    ReleaseModels(logistic, tree, tree).save(tmp_path)
    assert (tmp_path / "ltr_user.txt").is_file() and (tmp_path / "ltr_user.json").is_file()
    models = ReleaseModels.load(tmp_path, "ltr")
    assert models.for_shopper("ltr").kind == "ltr" and models.for_shopper("logistic").kind == "learned"
    (tmp_path / "ltr_user.json").unlink()
    assert ReleaseModels.load(tmp_path, "ltr").for_shopper("ltr").kind == "learned"  # only its own trees


def test_shopper_tasks_label_what_a_returning_shopper_took_later() -> None:
    day = lambda d: datetime(2024, 1, d, tzinfo=UTC)  # noqa: E731
    fit = [Event("u1", "a", "view", day(1), "s1"), Event("u1", "b", "purchase", day(2), "s2"),
           Event("u2", "c", "view", day(2), "s3")]
    label = [Event("u1", "b", "purchase", day(5), "s4"), Event("u1", "d", "view", day(5), "s4"),
             Event("u3", "e", "view", day(6), "s5"), Event("u2", "c", "view", day(6), "s6")]
    tasks = shopper_tasks(fit, label)
    assert [t.user_id for t in tasks] == ["u1", "u2"]  # u3 is new: nothing to personalise from
    u1 = tasks[0]
    assert u1.history == ("b", "a") and u1.purchased == {"b"} and u1.relevant == {"d"}  # bought before: excluded
    assert u1.query(5).anchor_id is None and u1.query(5).user_id == "u1" and u1.query(5).k == 5
    assert tasks[1].relevant == {"c"}  # viewed again: relevant (only purchases are excluded)


def test_validation_holds_out_whole_shoppers_and_sampling_keeps_every_positive() -> None:
    data = xor_queries(12, 10, 9)
    users = tuple(f"u{i % 4}" for i in range(12))  # each shopper has 3 queries (e.g. one per fold)
    fit, valid = InnerRows(data, users, ()).split_by_shopper(0.25, seed=1)
    assert len(valid.groups) == 3 and len(fit.groups) == 9 and len(fit.labels) + len(valid.labels) == 120
    sampled = data.sample_negatives(2, seed=0)
    assert sampled.labels.sum() == data.labels.sum() and sampled.groups.sum() == len(sampled.labels)
    assert all(size <= 2 + 10 for size in sampled.groups) and len(sampled.labels) < len(data.labels)
