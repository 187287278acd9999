"""The fusion ranker and the evaluate job on the fixtures, against the real Weaviate."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from jobs.cli import main
from recommender.behaviour.fit import fit_behaviour
from recommender.catalog.reader import load_catalog
from recommender.config import Settings
from recommender.domain import ProductFilter, RankQuery
from recommender.evaluation.metrics import ndcg_at_k
from recommender.events.log import EventReader
from recommender.events.protocol import build_tasks, split_point, time_split
from recommender.ranking.fusion import Rules
from recommender.ranking.learn import inner_rows, learn_fusion, learn_models, method_set
from recommender.ranking.ltr import LtrParams, TreeRanker
from recommender.store.item_cache import ItemCache
from recommender.store.products import ProductStore

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "fixtures"


@pytest.fixture(scope="module")
def store(fixtures_weaviate) -> Iterator[ProductStore]:  # type: ignore[no-untyped-def]
    with ProductStore.open(fixtures_weaviate) as s:
        yield s


@pytest.fixture(scope="module")
def split() -> tuple[list, list]:
    known = {p.product_id for p in load_catalog(FIXTURES).products}
    events = list(EventReader(FIXTURES / "events.csv", known))
    return time_split(events, split_point(events))


def near_for(store: ProductStore):  # type: ignore[no-untyped-def]
    return lambda v, name, n, f: [(h.product_id, 1 - h.distance)
                                  for h in store.near_vector(v, name, n, f, properties=[])]


def test_learned_fusion_beats_popularity_and_keeps_its_evidence(store, split) -> None:  # type: ignore[no-untyped-def]
    train, test = split
    items = ItemCache(store)
    settings = Settings().collaborative
    _, learned = learn_fusion(train, items, near_for(store), settings, Rules(), 60, max_tasks=150, progress=False)
    ms = method_set(fit_behaviour(train, settings, now=test[0].timestamp), items, near_for(store), Rules(), 60)
    fused = ms.fused("fused", learned)
    tasks = build_tasks(train, test)
    tasks = [tasks[i] for i in np.random.default_rng(1).choice(len(tasks), 120, replace=False)]
    ndcg = {"fused": [], "popularity": []}
    for task in tasks:
        ranked = fused.rank(task.query(10))
        assert len(ranked) <= 10 and task.anchor_id not in {r.product_id for r in ranked}
        assert len({r.product_id for r in ranked}) == len(ranked)
        ndcg["fused"].append(ndcg_at_k([r.product_id for r in ranked], task.relevant, 10))
        pop = ms.methods["popularity"].rank(task.query(10))
        ndcg["popularity"].append(ndcg_at_k([r.product_id for r in pop], task.relevant, 10))
    assert np.mean(ndcg["fused"]) > np.mean(ndcg["popularity"])
    top = fused.rank(tasks[0].query(10))[0]
    assert {"text", "image", "cooccurrence", "text_contribution"} <= set(top.signals)
    assert top.sources


def test_learned_trees_beat_the_logistic_fusion_and_explain_every_item(store, split, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """LightGBM lambdarank and the logistic fusion learned from the same inner rows, ranked on the same tasks
    (same candidates, same features): the trees at least hold their own, and every item shows per-signal
    contributions (tree SHAP) that add up, with the bias, to its score; a saved model ranks alike."""
    train, test = split
    items = ItemCache(store)
    settings = Settings().collaborative
    inner = inner_rows(train, items, near_for(store), settings, Rules(), 60, max_tasks=300, progress=False)
    models = learn_models(inner, LtrParams(threads=1))
    assert models.tree is not None and models.tree.meta["training"]["rounds"] >= 1
    ms = method_set(fit_behaviour(train, settings, now=test[0].timestamp), items, near_for(store), Rules(), 60)
    trees, logistic = ms.fused("trees", models.tree), ms.fused("logistic", models.logistic)
    tasks = build_tasks(train, test)
    tasks = [tasks[i] for i in np.random.default_rng(2).choice(len(tasks), 150, replace=False)]
    ndcg: dict[str, list[float]] = {"trees": [], "logistic": []}
    for task in tasks:
        for name, ranker in (("trees", trees), ("logistic", logistic)):
            ndcg[name].append(ndcg_at_k([r.product_id for r in ranker.rank(task.query(10))], task.relevant, 10))
    assert np.mean(ndcg["trees"]) >= 0.95 * np.mean(ndcg["logistic"]) > 0
    cs = trees.candidate_set(tasks[0].query(10))
    scores, contributions = models.tree.score(cs.rows)
    assert np.allclose(contributions.sum(axis=1) + models.tree.bias(cs.rows), scores)
    ranked = trees.rank(tasks[0].query(10))
    assert all("text_contribution" in r.signals and "cooccurrence_contribution" in r.signals for r in ranked)
    assert any(abs(v) > 0 for r in ranked for k, v in r.signals.items() if k.endswith("_contribution"))
    models.tree.save(tmp_path)
    again = ms.fused("again", TreeRanker.load(tmp_path))
    assert [r.product_id for r in again.rank(tasks[0].query(10))] == [r.product_id for r in ranked]


def test_cold_start_anchor_and_unknown_shopper_still_get_recommendations(store, split) -> None:  # type: ignore[no-untyped-def]
    train, _ = split
    trained = {e.product_id for e in train}
    cold = next(p.product_id for p in load_catalog(FIXTURES).products if p.product_id not in trained)
    behaviour = fit_behaviour(train, Settings().collaborative, now=train[-1].timestamp)
    ms = method_set(behaviour, ItemCache(store), near_for(store), Rules(), 50)
    from recommender.ranking.fusion import DEFAULT_WEIGHTS, configured_model

    fused = ms.fused("fused", configured_model(DEFAULT_WEIGHTS))
    ranked = fused.rank(RankQuery(cold, user_id="nobody-knows-me", k=5))
    assert len(ranked) == 5
    assert all("text" in r.sources or "image" in r.sources or "popularity" in r.sources for r in ranked)
    anchor = store.get(cold)
    assert anchor is not None
    # words and looks neighbours of a cold product: mostly its own category
    same = sum(store.get(r.product_id)["category"] == anchor["category"] for r in ranked)  # type: ignore[index]
    assert same >= 2


def test_evaluate_job_writes_metrics_and_report(fixtures_weaviate, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("RECSYS_WEAVIATE__HTTP_PORT", str(fixtures_weaviate.http_port))
    monkeypatch.setenv("RECSYS_WEAVIATE__GRPC_PORT", str(fixtures_weaviate.grpc_port))
    monkeypatch.setenv("RECSYS_WEAVIATE__COLLECTION", fixtures_weaviate.collection)
    out = tmp_path / "eval"
    code = main(["evaluate", "--catalog", str(FIXTURES), "--out", str(out), "--max-tasks", "60",
                 "--inner-tasks", "80", "--methods", "popularity,text,image,fused_learned,fused_ltr",
                 "--no-progress"])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["tasks"] == 60 and set(metrics["methods"]) == {"popularity", "text", "image", "fused_learned",
                                                                  "fused_ltr"}
    for method in metrics["methods"].values():
        assert {"all", "cold_anchor", "warm_anchor", "returning_shopper", "new_shopper", "latency_ms"} <= set(method)
        assert {"ndcg@10", "hit_rate@10", "recall@10", "mrr", "coverage@10", "diversity@10", "novelty@10"} <= set(
            method["all"])
        assert 0.0 <= method["all"]["ndcg@10"] <= 1.0
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 2 and "fused_learned" in html
    assert json.loads((out / "fusion_learned.json").read_text())["kind"] == "learned"
    assert json.loads((out / "ltr.json").read_text())["kind"] == "ltr" and (out / "ltr.txt").is_file()
    assert "fused_ltr ndcg@10" in metrics["headline"]


def test_evaluate_rejects_unknown_methods(fixtures_weaviate, tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert main(["evaluate", "--catalog", str(FIXTURES), "--out", str(tmp_path), "--methods", "magic"]) == 2


def test_filters_are_pushed_down_and_hold_for_every_source(store, split) -> None:  # type: ignore[no-untyped-def]
    from recommender.ranking.fusion import DEFAULT_WEIGHTS, configured_model

    train, _ = split
    pushed: list[ProductFilter | None] = []
    base = near_for(store)

    def near(v, name, n, f):  # type: ignore[no-untyped-def]
        pushed.append(f)
        return base(v, name, n, f)

    behaviour = fit_behaviour(train, Settings().collaborative, now=train[-1].timestamp)
    ms = method_set(behaviour, ItemCache(store), near, Rules(), 50)
    fused = ms.fused("fused", configured_model(DEFAULT_WEIGHTS))
    anchor = next(p for p in load_catalog(FIXTURES).products if p.category[0] == "Men")
    wanted = ProductFilter(category=("Women",), price_max=60.0, in_stock=True)
    ranked = fused.rank(RankQuery(anchor.product_id, k=10, filters=wanted))
    assert ranked and pushed and all(f == wanted for f in pushed)
    for r in ranked:
        p = store.get(r.product_id)
        assert p is not None and p["category_l1"] == "Women" and p["price"] <= 60.0 and p["in_stock"]
