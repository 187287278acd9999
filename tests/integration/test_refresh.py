"""The nightly refresh against a real Weaviate, real encoders, real implicit and SQLite: publish, serve, incremental
runs, the quality gate, rollback, the lock, and the faults it must survive (killed at any stage, Weaviate down,
half the catalog gone, a slow LLM).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from flask import Flask

from api.app import create_app
from jobs.cli import main
from recommender.ask.vocabulary import Vocabulary, vocabulary_path
from recommender.config import ExplainSettings, RankingSettings, Settings, WeaviateSettings, load_settings
from recommender.ranking.fusion import FusionModel
from recommender.ranking.precomputed import PrecomputedLists
from recommender.refresh.stages import refresh_lock
from recommender.releases import ReleaseStore
from recommender.store.ports import free_ports
from recommender.store.products import ProductStore
from recommender.trust_settings import LimitSettings
from tests.catalogs import read_rows, small_catalog, write_rows
from tests.integration.conftest import IMAGE_SIZE, REPO
from tests.integration.test_api_reconnect import Forwarder

pytestmark = pytest.mark.integration

PRODUCTS = 120


PER_SOURCE = 100  # candidates per source, for the refresh and the app alike (see Shop.env)


@dataclass(frozen=True)
class Shop:
    """One refresh deployment: a data dir, a collection on the session's Weaviate, a catalog folder."""

    data_dir: Path
    weaviate: WeaviateSettings
    catalog: Path

    def env(self) -> dict[str, str]:
        """The environment a refresh process runs with (small gate settings keep the suite fast)."""
        w = self.weaviate
        return {"WEAVIATE_URL": f"http://{w.host}:{w.http_port}", "WEAVIATE_GRPC_URL": f"{w.host}:{w.grpc_port}",
                "RECSYS_WEAVIATE__COLLECTION": w.collection, "RECSYS_DATA_DIR": str(self.data_dir),
                "RECSYS_IMAGE_ENCODER__IMAGE_SIZE": str(IMAGE_SIZE), "RECSYS_COLLABORATIVE__THREADS": "1",
                "RECSYS_COLLABORATIVE__FACTORS": "16", "RECSYS_COLLABORATIVE__ITERATIONS": "5",
                "RECSYS_REFRESH__INNER_TASKS": "150", "RECSYS_REFRESH__MAX_GATE_TASKS": "150",
                "RECSYS_REFRESH__MIN_GATE_TASKS": "10", "RECSYS_REFRESH__LIST_K": "12",
                "RECSYS_REFRESH__RETUNE_DAYS": "7",
                # deep candidate lists: on this small shop the trees beat the logistic fusion at 100 per source (not
                # at the default 50), and these tests follow the trees' path end to end
                "RECSYS_RANKING__PER_SOURCE": str(PER_SOURCE)}

    def refresh(self, *args: str, catalog: Path | None = None) -> tuple[int, str, str]:
        """Run `recsys refresh` in-process; (exit status, stdout, stderr)."""
        return self.cli("refresh", "--catalog", str(catalog or self.catalog), "--no-progress", *args)

    def cli(self, *argv: str) -> tuple[int, str, str]:
        """Run a `recsys` command in-process with this shop's environment."""
        out, err = io.StringIO(), io.StringIO()
        with mock.patch.dict(os.environ, self.env()), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(argv))
        return code, out.getvalue(), err.getvalue()

    def settings(self, **sections: Any) -> Settings:
        """Settings for an app serving this shop (reload checked on every request)."""
        base = load_settings(env={}, overrides={"data_dir": self.data_dir})
        sections.setdefault("ranking", RankingSettings(reload_interval_s=0.0, per_source=PER_SOURCE))
        return replace(base, weaviate=self.weaviate, **sections)

    @property
    def releases(self) -> ReleaseStore:
        return ReleaseStore.in_data_dir(self.data_dir)


def new_shop(root: Path, weaviate_server: Any, name: str) -> Shop:
    weaviate = WeaviateSettings(host=weaviate_server.host, http_port=weaviate_server.http_port,
                                grpc_port=weaviate_server.grpc_port, collection=name)
    return Shop(root / "data", weaviate, small_catalog(root / "catalog", PRODUCTS, with_events=True))


def lists_of(path: Path) -> dict[str, list[str]]:
    """anchor → product ids of a release's precomputed lists."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        return {a: [row[0] for row in json.loads(items)] for a, items in db.execute("SELECT * FROM lists")}


def drop(weaviate: WeaviateSettings) -> None:
    with ProductStore.open(weaviate) as store:
        store.drop()


@pytest.fixture(scope="module")
def shop(weaviate_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """A shop after its first refresh (release published)."""
    s = new_shop(tmp_path_factory.mktemp("shop"), weaviate_server, "RefreshShop")
    code, out, err = s.refresh()
    assert code == 0, out + err
    yield s
    drop(s.weaviate)


def serve(app: Flask, path: str) -> dict[str, Any]:
    res = app.test_client().get(path)
    assert res.status_code == 200, res.json
    return res.json


# ------------------------------------------------------------------------------------------------ publish
def test_first_refresh_publishes_a_complete_release_the_api_serves(shop: Shop) -> None:
    """Release with lists for every product, the gate's report, and the API answering from the lists."""
    release = shop.releases.load()
    assert release.meta["gate"]["publish"] and release.meta["refit"]
    assert release.meta["counts"]["products"] == PRODUCTS
    lists = lists_of(release.lists_path)
    assert len(lists) == PRODUCTS and sum(1 for ids in lists.values() if len(ids) >= 10) > PRODUCTS * 0.9
    assert all(anchor not in ids for anchor, ids in lists.items())
    metrics = json.loads((release.folder / "metrics.json").read_text())
    # like with like: the candidate's trees, its logistic fusion (learned from the same inner rows) and the served
    # model rank the same holdout tasks; the release keeps the trees (ltr.txt + ltr.json) and ranks with them
    assert set(metrics["methods"]) == {"candidate", "candidate_logistic", "served"} and metrics["tasks"] >= 10
    assert metrics["candidate_model"]["kind"] == "ltr" and release.meta["fusion"] == "ltr"
    assert (release.folder / "ltr.txt").is_file() and (release.folder / "fusion.json").is_file()
    # the "for you" trees: learned on shopper tasks, kept only when they rank the holdout's shoppers at least as
    # well as the logistic fusion (the better model serves); the served "for you" model ranked the same shoppers
    shopper = metrics["shopper"]
    assert shopper["tasks"] >= 10 and shopper["kept"] == (release.folder / "ltr_user.txt").is_file()
    assert shopper["kept"] == (shopper["ndcg@10"]["trees"] >= shopper["ndcg@10"]["logistic"])
    assert shopper["ndcg@10"]["served"] is not None
    # the tune stage: nothing was tuned yet, so the refresh tuned on the log's validation items and recorded it
    tune = release.meta["tune"]
    assert tune["ran"] and tune["shoppers"] >= 10 and "factors" not in tune["chosen"]
    assert release.meta["tuned"].endswith(f"{tune['version']}/tuned.json")
    tuned = shop.settings().collaborative  # the next run's defaults: the choice, explicit settings kept
    assert {k: getattr(tuned, k) for k in tune["chosen"]} == tune["chosen"] and tuned.factors == 16
    assert (release.folder / "report.html").is_file()
    settings = shop.settings()
    vocabulary = Vocabulary.load(vocabulary_path(settings.data_dir, settings.weaviate.collection))
    assert vocabulary.has_price and vocabulary.lookup("jeans")  # the ask planner's words follow the store

    app = create_app(shop.settings())
    try:
        anchor = sorted(lists)[3]
        body = serve(app, f"/v1/products/{anchor}/recommendations?k=5")
        assert (body["release"], body["served_from"], body["degraded"]) == (release.version, "precomputed", False)
        assert body["fusion"] == "ltr"
        assert [i["product_id"] for i in body["items"]] == lists[anchor][:5]
        assert all(i["title"] and i["explanation"]["text"] for i in body["items"])
        history = read_rows(shop.catalog / "events.csv")[0]
        personal = serve(app, f"/v1/products/{anchor}/recommendations?k=5&user_id={history['user_id']}")
        assert personal["served_from"] == "pool" and personal["fusion"] == "ltr"
        for_you = serve(app, f"/v1/users/{history['user_id']}/recommendations?k=5")
        assert for_you["items"] and for_you["fusion"] == ("ltr" if shopper["kept"] else "learned")
        assert any(abs(v) > 0 for i in personal["items"] for k, v in i["signals"].items()
                   if k.endswith("_contribution"))
    finally:
        app.extensions["recsys"].close()
    logistic = create_app(shop.settings(ranking=RankingSettings(reload_interval_s=0.0, per_source=PER_SOURCE,
                                                                model="logistic")))
    try:  # the choice in settings: the same release ranked by its logistic fusion
        assert serve(logistic, f"/v1/products/{anchor}/recommendations?k=5&user_id={history['user_id']}"
                     )["fusion"] == "learned"
    finally:
        logistic.extensions["recsys"].close()


def test_a_shoppers_page_from_the_stored_pool_ranks_as_the_live_path(shop: Shop) -> None:
    """The fast path (the anchor's stored pool re-ranked for the shopper, no vector-store query) and the live path
    (``ranking.pool`` off: the store's neighbours asked per request) give the same items with the same scores,
    signals and sources for shoppers with history; a filtered page is ranked live."""
    anchors = sorted(lists_of(shop.releases.load().lists_path))[:10]
    users = list(dict.fromkeys(row["user_id"] for row in read_rows(shop.catalog / "events.csv")))[:4]
    pooled = create_app(shop.settings())
    live = create_app(shop.settings(ranking=RankingSettings(reload_interval_s=0.0, per_source=PER_SOURCE, pool=False)))
    try:
        personalised = 0
        for anchor in anchors:
            for user in users:
                path = f"/v1/products/{anchor}/recommendations?k=10&user_id={user}"
                fast, slow = serve(pooled, path), serve(live, path)
                assert (fast["served_from"], slow["served_from"]) == ("pool", "live")
                assert fast["items"] and [(i["product_id"], i["score"], i["signals"], i["sources"])
                                          for i in fast["items"]] == \
                    [(i["product_id"], i["score"], i["signals"], i["sources"]) for i in slow["items"]]
                assert [i["explanation"] for i in fast["items"]] == [i["explanation"] for i in slow["items"]]
                personalised += any(i["signals"]["history_text"] != 0 or i["signals"]["als_user"] != 0
                                    for i in fast["items"])
        assert personalised > len(anchors)  # the shoppers' own signals were there to agree on
        filtered = serve(pooled, f"/v1/products/{anchors[0]}/recommendations?k=5&user_id={users[0]}&in_stock=true")
        assert filtered["served_from"] == "live" and filtered["items"]
    finally:
        pooled.extensions["recsys"].close()
        live.extensions["recsys"].close()


def test_a_second_run_with_nothing_changed_publishes_nothing(shop: Shop) -> None:
    before, tuned = shop.releases.versions(), shop.releases.load().meta["tune"]["version"]
    code, out, _ = shop.refresh()
    assert code == 0 and "nothing changed" in out
    assert "events +0 (file unchanged, skipped; total" in out  # the events file was not read again
    assert shop.releases.versions() == before
    # the tuned choice is fresh (refresh.retune_days): reused as the defaults, so the settings did not change
    assert "its choice is reused" in out
    assert (shop.data_dir / "models" / "tuned" / "current").read_text().strip() == tuned


def test_the_lock_refuses_a_second_refresh(shop: Shop) -> None:
    with refresh_lock(shop.data_dir / "refresh.lock"):
        code, _, err = shop.refresh()
    assert code == 2 and "another refresh is running" in err and str(os.getpid()) in err


# ------------------------------------------------------------------------------------------------- faults
def test_half_the_catalog_vanishing_is_refused_and_nothing_changes(shop: Shop, tmp_path: Path) -> None:
    half = tmp_path / "half"
    shutil.copytree(shop.catalog, half)
    rows = read_rows(half / "products.csv")
    write_rows(half / "products.csv", rows[: len(rows) // 2 - 1])
    current = shop.releases.current_version()
    code, _, err = shop.refresh(catalog=half)
    assert code == 2 and "--allow-mass-delete" in err
    with ProductStore.open(shop.weaviate) as store:
        assert store.count() == PRODUCTS
    assert shop.releases.current_version() == current


def test_views_from_the_release_rank_and_render_as_the_stores(shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    """``ranking.release_views`` (the default): product views come from the release's snapshot and vectors. Every
    page (anonymous, a shopper's, "for you") is the same, byte for byte, as with every view read from the store,
    and is built without fetching a single product view from the store."""
    fetched: list[int] = []
    items = ProductStore.items

    def counted(store: ProductStore, product_ids: Any, *args: Any, **kwargs: Any) -> Any:
        fetched.append(len(product_ids))
        return items(store, product_ids, *args, **kwargs)

    monkeypatch.setattr(ProductStore, "items", counted)
    anchors = sorted(lists_of(shop.releases.load().lists_path))[:8]
    users = list(dict.fromkeys(row["user_id"] for row in read_rows(shop.catalog / "events.csv")))[:3]
    resident = create_app(shop.settings())
    stored = create_app(shop.settings(ranking=RankingSettings(reload_interval_s=0.0, per_source=PER_SOURCE,
                                                              release_views=False)))
    paths = [f"/v1/products/{a}/recommendations?k=8" for a in anchors]
    paths += [f"/v1/products/{a}/recommendations?k=8&user_id={u}" for a in anchors for u in users]
    paths += [f"/v1/users/{u}/recommendations?k=8" for u in users]
    try:
        served = set()
        for path in paths:
            before = len(fetched)
            fast = resident.test_client().get(path)
            assert fast.status_code == 200 and len(fetched) == before, path  # not one view from the store
            slow = stored.test_client().get(path)
            assert fast.get_data() == slow.get_data(), path
            served.add(fast.json["served_from"])
        assert fetched and served == {"precomputed", "pool", "live"}  # the store's views were read by the other
    finally:
        resident.extensions["recsys"].close()
        stored.extensions["recsys"].close()


def test_product_pages_fall_back_to_the_lists_while_weaviate_is_down(shop: Shop) -> None:
    """Weaviate unreachable: with every view from the store, product pages with a list answer from it (labelled),
    the rest is 503; with the release's own views, pages need no store at all. Then recovery."""
    # both picked in one call: two separate picks may get the same port before either is bound
    http_port, grpc_port = free_ports(2, "127.0.0.1")
    http = Forwarder(http_port, shop.weaviate.http_port)
    grpc = Forwarder(grpc_port, shop.weaviate.grpc_port)
    down_store = replace(shop.weaviate, http_port=http.listen_port, grpc_port=grpc.listen_port)
    settings = replace(shop.settings(ranking=RankingSettings(reload_interval_s=0.0, per_source=PER_SOURCE,
                                                             release_views=False)), weaviate=down_store)
    app = create_app(settings)
    resident = create_app(replace(shop.settings(), weaviate=down_store))
    anchor = sorted(lists_of(shop.releases.load().lists_path))[0]
    user = read_rows(shop.catalog / "events.csv")[0]["user_id"]
    try:
        for path, served_from in ((f"/v1/products/{anchor}/recommendations?k=4", "precomputed"),
                                  (f"/v1/products/{anchor}/recommendations?k=4&user_id={user}", "pool"),
                                  (f"/v1/users/{user}/recommendations?k=4", "live")):
            body = serve(resident, path)
            assert (body["served_from"], body["degraded"], len(body["items"])) == (served_from, False, 4), path
        down = serve(app, f"/v1/products/{anchor}/recommendations?k=4")
        assert (down["served_from"], down["degraded"], len(down["items"])) == ("fallback", True, 4)
        assert all(i["title"] and i["price"] is not None for i in down["items"])
        user = app.test_client().get("/v1/users/U0001/recommendations?k=4")
        assert user.status_code == 503 and user.json["error"]["code"] == "store_unavailable"
        http.start()
        grpc.start()
        up = serve(app, f"/v1/products/{anchor}/recommendations?k=4")
        assert (up["served_from"], up["degraded"]) == ("precomputed", False)
        assert [i["product_id"] for i in up["items"]] == [i["product_id"] for i in down["items"]]
    finally:
        app.extensions["recsys"].close()
        resident.extensions["recsys"].close()
        http.stop()
        grpc.stop()


def test_a_slow_llm_keeps_product_pages_within_budget(shop: Shop) -> None:
    """An LLM endpoint that hangs (for minutes): explain=llm still answers, with template sentences.

    Had the 0.3 s timeout not fired, the page would wait on the hanging server; the bound below only detects
    such a hang (it is 100× the timeout), it does not measure speed."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    release_hang = threading.Event()

    class Hang(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            release_hang.wait(300)
            self.send_response(500)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hang)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    explain = ExplainSettings(backend="http", url=f"http://127.0.0.1:{server.server_port}/v1", timeout_s=0.3,
                              cache_path=shop.data_dir.parent / "slow-llm-cache.sqlite")
    app = create_app(shop.settings(explain=explain))
    anchor = sorted(lists_of(shop.releases.load().lists_path))[1]
    try:
        serve(app, f"/v1/products/{anchor}/recommendations?k=2&explain=none")  # warm the item cache
        t0 = time.perf_counter()
        body = serve(app, f"/v1/products/{anchor}/recommendations?k=8&explain=llm")
        assert time.perf_counter() - t0 < 30, "the page waited on the hanging LLM"
        assert len(body["items"]) == 8 and {i["explanation"]["source"] for i in body["items"]} == {"template"}
    finally:
        release_hang.set()
        app.extensions["recsys"].close()
        server.shutdown()
        server.server_close()


# ------------------------------------------------------------------------- incremental, gate and rollback
def test_changed_products_rerank_only_their_pages(shop: Shop, tmp_path: Path) -> None:
    """Two products retitled, events unchanged: the model is kept and only their lists are re-ranked."""
    first = shop.releases.load()
    rows = read_rows(shop.catalog / "products.csv")
    changed = {rows[5]["product_id"], rows[40]["product_id"]}
    for r in rows:
        if r["product_id"] in changed:
            r["title"] = "Limited edition " + r["title"]
    write_rows(shop.catalog / "products.csv", rows)
    code, out, err = shop.refresh()
    assert code == 0, out + err
    assert "file unchanged, skipped" in out  # retitled products: the same product ids, so the same import
    second = shop.releases.load()
    assert second.version != first.version and not second.meta["refit"]
    assert second.collaborative_version == first.collaborative_version
    counts = second.meta["counts"]
    assert (counts["changed"], counts["lists_ranked"], counts["lists_carried"]) == (2, 2, PRODUCTS - 2)
    old, new = lists_of(first.lists_path), lists_of(second.lists_path)
    assert {a: ids for a, ids in new.items() if a not in changed} == {a: ids for a, ids in old.items()
                                                                       if a not in changed}
    assert set(new) == set(old)
    before, after = PrecomputedLists(first.lists_path), PrecomputedLists(second.lists_path)
    try:  # snapshots: the changed products' re-read from the store, the others carried over unchanged
        ids = [r["product_id"] for r in rows]
        old_views, new_views = before.views(ids), after.views(ids)
    finally:
        before.close()
        after.close()
    assert set(new_views) == set(old_views) == set(ids)
    assert all(new_views[p].title.startswith("Limited edition ") for p in changed)
    assert {p: v for p, v in new_views.items() if p not in changed} == {p: v for p, v in old_views.items()
                                                                        if p not in changed}


def test_a_worse_model_is_not_published_and_rollback_returns(shop: Shop, tmp_path: Path) -> None:
    """A fusion model with inverted weights fails the gate (exit 3, served release unchanged, report says why);
    a good one is published and the running API switches to it; rollback switches back without restart."""
    served = shop.releases.load()
    good = FusionModel.load(served.fusion_path)
    bad = replace(good, weights=-good.weights, kind="configured")
    bad.save(tmp_path / "bad.json")
    app = create_app(shop.settings())
    try:
        code, out, _ = shop.refresh("--fusion-weights", str(tmp_path / "bad.json"))
        assert code == 3 and "not published" in out
        refused = shop.releases.load(shop.releases.versions()[-1])
        gate = refused.meta["gate"]
        assert not gate["publish"] and gate["candidate"] < gate["current"]
        assert shop.releases.current_version() == served.version
        anchor = sorted(lists_of(served.lists_path))[2]
        assert serve(app, f"/v1/products/{anchor}/recommendations?k=3")["release"] == served.version

        code, out, err = shop.refresh("--force")
        assert code == 0, out + err
        assert "events +0 (rejected 0, total" in out  # --force reads the unchanged events file again
        newest = shop.releases.current_version()
        assert newest not in (served.version, refused.version)
        assert serve(app, f"/v1/products/{anchor}/recommendations?k=3")["release"] == newest

        code, out, _ = shop.cli("releases", "rollback", "--no-progress")
        assert code == 0 and served.version in out
        assert shop.releases.current_version() == served.version
        assert serve(app, f"/v1/products/{anchor}/recommendations?k=3")["release"] == served.version
    finally:
        app.extensions["recsys"].close()


def test_the_refresh_writes_llm_sentences_that_product_pages_read_from_the_cache(shop: Shop) -> None:
    """With an (OpenAI-compatible, local) LLM configured, the refresh writes the top sentences of every list in
    batch; an anonymous product page with explain=llm then reads them from the cache, without calling the LLM."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    calls: list[str] = []

    class Llm(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            calls.append(self.path)
            body = json.dumps({"choices": [{"message": {"content": "A similar look."}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Llm)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/v1"
    cache = shop.data_dir / "explanations.sqlite"
    llm_env = {"RECSYS_EXPLAIN__BACKEND": "http", "RECSYS_EXPLAIN__URL": url, "RECSYS_REFRESH__EXPLAIN_ITEMS": "3"}
    try:
        with mock.patch.dict(os.environ, llm_env):
            code, out, err = shop.refresh("--force")
        assert code == 0 and "explanations:" in out, out + err
        written = len(calls)
        assert written >= PRODUCTS * 2  # about 3 per list
        app = create_app(shop.settings(explain=ExplainSettings(backend="http", url=url, cache_path=cache)))
        try:
            anchor = sorted(lists_of(shop.releases.load().lists_path))[7]
            body = serve(app, f"/v1/products/{anchor}/recommendations?k=3&explain=llm")
        finally:
            app.extensions["recsys"].close()
        assert body["served_from"] == "precomputed"
        assert [i["explanation"]["source"] for i in body["items"]] == ["cache"] * 3
        assert len(calls) == written  # the page did not call the LLM
    finally:
        server.shutdown()
        server.server_close()


def test_a_new_shop_without_events_gets_a_release(weaviate_server: Any, tmp_path: Path) -> None:
    """Cold start: no events at all. The refresh publishes the configured fusion (nothing to learn or judge by)
    and every product page has a list from looks and words."""
    shop = new_shop(tmp_path / "new", weaviate_server, "RefreshNewShop")
    rows = read_rows(shop.catalog / "products.csv")[:30]
    write_rows(shop.catalog / "products.csv", rows)
    (shop.catalog / "events.csv").unlink()
    try:
        code, out, err = shop.refresh()
        assert code == 0 and "without a comparison" in out, out + err
        release = shop.releases.load()
        assert release.collaborative_version is None and release.meta["fusion"] == "configured"
        lists = lists_of(release.lists_path)
        assert len(lists) == 30 and all(len(ids) >= 10 for ids in lists.values())
    finally:
        drop(shop.weaviate)


# ------------------------------------------------------------------------------------ killed at any stage
KILL_AT = ("vectorize", "gate", "lists", "publish")


def test_killed_at_each_stage_then_rerun_equals_a_clean_run(weaviate_server: Any, tmp_path: Path) -> None:
    """A refresh of a changed catalog (new events, retitled products) is SIGKILLed as each stage starts; the API
    keeps serving the old release meanwhile; a last run finishes, and the result equals one clean run."""
    shop = new_shop(tmp_path / "killed", weaviate_server, "RefreshKilled")
    clean = new_shop(tmp_path / "clean", weaviate_server, "RefreshClean")
    try:
        for s in (shop, clean):
            code, out, err = s.refresh()
            assert code == 0, out + err
            next_day(s.catalog)
        old = shop.releases.current_version()
        served: list[tuple[int, str | None]] = []
        # the poller asks 20 times a second: it checks availability, not the rate limits
        app = create_app(replace(shop.settings(), limits=LimitSettings(enabled=False)))
        with polling(app, sorted(lists_of(shop.releases.load().lists_path))[0], served):
            for stage in KILL_AT:
                kill_at(shop, stage)
                assert shop.releases.current_version() in (old, *([] if stage != "publish" else
                                                                  shop.releases.versions()))
        assert served and all(code == 200 for code, _ in served), served[:5]
        assert {release for _, release in served} <= {old, *shop.releases.versions()}
        for s in (shop, clean):
            code, out, err = s.refresh()
            assert code == 0, out + err
        assert_same_outcome(shop, clean)
    finally:
        drop(shop.weaviate)
        drop(clean.weaviate)


def next_day(catalog: Path) -> None:
    """A day later: three products retitled and the last fixture sessions' events appended (shifted a day on)."""
    rows = read_rows(catalog / "products.csv")
    for r in rows[:3]:
        r["title"] += " (new season)"
    write_rows(catalog / "products.csv", rows)
    events = read_rows(catalog / "events.csv")
    extra = [dict(e, timestamp=e["timestamp"].replace("2024-", "2025-"), session_id=e["session_id"] + "b")
             for e in events[-150:]]
    write_rows(catalog / "events.csv", events + extra)


def kill_at(shop: Shop, stage: str) -> None:
    """Start a refresh process and SIGKILL it as soon as it logs the start of ``stage``."""
    env = dict(os.environ, **shop.env())
    proc = subprocess.Popen([sys.executable, "-m", "jobs.cli", "refresh", "--catalog", str(shop.catalog),
                             "--no-progress"], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stderr is not None
    seen = []
    try:
        for line in proc.stderr:
            seen.append(line)
            if f"refresh stage {stage}" in line:
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
    assert any(f"refresh stage {stage}" in line for line in seen), "".join(seen[-20:])


@contextlib.contextmanager
def polling(app: Flask, anchor: str, served: list[tuple[int, str | None]]) -> Iterator[None]:
    """Ask the app for a product page every 50 ms in a thread while the block runs."""
    stop = threading.Event()

    def loop() -> None:
        client = app.test_client()
        while not stop.is_set():
            res = client.get(f"/v1/products/{anchor}/recommendations?k=5")
            served.append((res.status_code, (res.json or {}).get("release")))
            stop.wait(0.05)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)
        app.extensions["recsys"].close()


def assert_same_outcome(a: Shop, b: Shop) -> None:
    """Same products and fingerprints in the store, same event count, same model data, same lists."""
    ra, rb = a.releases.load(), b.releases.load()
    assert ra.fingerprints() == rb.fingerprints() and len(ra.fingerprints()) == PRODUCTS
    assert ra.meta["events_digest"] == rb.meta["events_digest"]
    assert ra.meta["counts"]["events"] == rb.meta["counts"]["events"]
    for s in (a, b):
        with ProductStore.open(s.weaviate) as store:
            assert store.count() == PRODUCTS
    assert ra.popularity() == rb.popularity()
    la, lb = lists_of(ra.lists_path), lists_of(rb.lists_path)
    assert set(la) == set(lb)
    same = sum(la[k] == lb[k] for k in la)
    assert same == len(la), f"{len(la) - same} of {len(la)} lists differ"
    assert not [p for p in a.releases.root.iterdir() if p.name.startswith(".tmp-")]


# ------------------------------------------------------------------------------- Weaviate down in a refresh
def test_weaviate_lost_during_vectorize_fails_clearly_then_the_rerun_resumes(weaviate_server: Any,
                                                                               tmp_path: Path) -> None:
    """The connection to Weaviate is cut while the refresh writes products: the job exits 2 with a message naming
    Weaviate, publishes nothing; once Weaviate is back a re-run completes the store and publishes."""
    shop = new_shop(tmp_path / "cut", weaviate_server, "RefreshCut")
    # both picked in one call: two separate picks may get the same port before either is bound
    http_port, grpc_port = free_ports(2, "127.0.0.1")
    http = Forwarder(http_port, shop.weaviate.http_port)
    grpc = Forwarder(grpc_port, shop.weaviate.grpc_port)
    cut = replace(shop, weaviate=replace(shop.weaviate, http_port=http.listen_port, grpc_port=grpc.listen_port))
    http.start()
    grpc.start()
    env = dict(os.environ, **cut.env(), RECSYS_VECTORIZE__CHUNK_SIZE="8", RECSYS_VECTORIZE__WRITE_BATCH_SIZE="8",
               PYTHONFAULTHANDLER="1")
    try:
        proc = subprocess.Popen([sys.executable, "-m", "jobs.cli", "refresh", "--catalog", str(shop.catalog),
                                 "--no-progress"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        with ProductStore.open(shop.weaviate) as store:
            store.ensure_collection()  # so that counting works before the job has created it (it is idempotent)
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline and proc.poll() is None and store.count() < 16:
                time.sleep(0.05)
            http.stop()
            grpc.stop()
            t0 = time.monotonic()
            try:
                out, err = proc.communicate(timeout=180)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGABRT)  # PYTHONFAULTHANDLER: the job's threads' stacks go to stderr
                out, err = proc.communicate()
                pytest.fail(f"the refresh did not exit within 180 s of losing Weaviate:\n{err[-6000:]}")
            failed_after = time.monotonic() - t0
            written = store.count()
        assert proc.returncode == 2, out + err
        error = [line for line in err.splitlines() if line.startswith("recsys refresh: error:")]
        assert error and "weaviate" in error[-1].lower() and "Traceback" not in err, err[-2000:]
        print("\n" + error[-1])
        assert 0 < written < PRODUCTS and shop.releases.current_version() is None
        print(f"\nrefresh failed {failed_after:.1f} s after Weaviate was cut, {written} products written")
        http.start()
        grpc.start()
        code, out, err = cut.refresh()
        assert code == 0, out + err
        with ProductStore.open(shop.weaviate) as store:
            assert store.count() == PRODUCTS
        assert shop.releases.current_version() is not None
    finally:
        http.stop()
        grpc.stop()
        drop(shop.weaviate)
