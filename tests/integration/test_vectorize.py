"""The vectorize job against a real Weaviate with the real encoders."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from recommender.catalog.reader import load_catalog
from recommender.config import Settings, load_settings
from recommender.encoders.hubness import HubnessCorrection
from recommender.encoders.image import OpenClipImageEncoder
from recommender.encoders.text import SentenceTransformerEncoder
from recommender.errors import StoreError
from recommender.store.products import ProductStore
from recommender.vectorize import MassDeleteRefused, Vectorizer, VectorizeSummary
from tests.catalogs import read_rows, small_catalog
from tests.integration.conftest import FIXTURES, IMAGE_SIZE
from tests.vectorize_runs import assert_same_state, kill_vectorize_mid_run, store_state

# text_encoder / image_encoder (session-scoped, real models) come from tests/integration/conftest.py

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(weaviate_server, weaviate_collection_name: str, tmp_path: Path) -> Settings:  # type: ignore[no-untyped-def]
    return load_settings(env={}, overrides={
        "data_dir": tmp_path / "data",
        "weaviate.host": weaviate_server.host,
        "weaviate.http_port": weaviate_server.http_port,
        "weaviate.grpc_port": weaviate_server.grpc_port,
        "weaviate.collection": weaviate_collection_name,
        "image_encoder.image_size": IMAGE_SIZE,
        "vectorize.chunk_size": 32,
    })


@pytest.fixture
def store(settings: Settings) -> Iterator[ProductStore]:
    with ProductStore.open(settings.weaviate) as s:
        yield s
        s.drop()


def run_job(store: ProductStore, settings: Settings, text_encoder: SentenceTransformerEncoder,
            image_encoder: OpenClipImageEncoder, catalog: Path, **kw: bool) -> VectorizeSummary:
    job = Vectorizer(store, text_encoder, image_encoder, settings.vectorize, progress=False)
    return job.run(catalog, **kw)


def rewrite_rows(catalog: Path, edit) -> None:  # type: ignore[no-untyped-def]
    with (catalog / "products.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    rows = edit(rows)
    with (catalog / "products.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_fixtures_vectorize_fully_and_second_run_writes_nothing(store, settings, text_encoder, image_encoder):
    summary = run_job(store, settings, text_encoder, image_encoder, FIXTURES)
    valid = load_catalog(FIXTURES)
    assert summary.invalid == len(valid.errors) == 0
    assert store.count() == len(valid.products) == summary.written
    assert summary.text_encoded == summary.image_encoded == len(valid.products)

    ids = [p.product_id for p in valid.products]
    vectors = store.vectors(ids)
    assert all(set(vectors[pid]) >= {"text", "image"} for pid in ids)
    for pid in ids[:: max(1, len(ids) // 10)]:
        v = vectors[pid]["image"]
        assert v.dtype == np.float32 and abs(float(np.linalg.norm(v)) - 1.0) < 1e-3
        assert store.near_vector(v, "image", k=3)[0].product_id == pid
        assert store.near_vector(vectors[pid]["text"], "text", k=3)[0].product_id == pid

    again = run_job(store, settings, text_encoder, image_encoder, FIXTURES)
    assert (again.written, again.text_encoded, again.image_encoded, again.deleted) == (0, 0, 0, 0)
    assert again.skipped_unchanged == len(valid.products)


def test_only_what_changed_is_reencoded(store, settings, text_encoder, image_encoder, tmp_path):
    catalog = small_catalog(tmp_path / "cat", 12)
    run_job(store, settings, text_encoder, image_encoder, catalog)
    before = store.vectors(sorted(store.iter_ids()))
    rows = read_rows(catalog / "products.csv")
    img_pid, img_path = rows[0]["product_id"], catalog / rows[0]["image"]
    Image.new("RGB", (64, 64), (10, 200, 30)).save(img_path)
    txt_pid = rows[1]["product_id"]
    rewrite_rows(catalog, lambda rs: [dict(r, title=r["title"] + " deluxe") if r["product_id"] == txt_pid
                                      else r for r in rs])

    s = run_job(store, settings, text_encoder, image_encoder, catalog)
    assert (s.image_encoded, s.text_encoded, s.written, s.skipped_unchanged) == (1, 1, 2, 10)
    after = store.vectors([img_pid, txt_pid])
    assert np.allclose(after[img_pid]["text"], before[img_pid]["text"])
    assert not np.allclose(after[img_pid]["image"], before[img_pid]["image"])
    assert np.allclose(after[txt_pid]["image"], before[txt_pid]["image"])
    assert not np.allclose(after[txt_pid]["text"], before[txt_pid]["text"])

    rewrite_rows(catalog, lambda rs: [dict(r, price="1.00") if r["product_id"] == txt_pid else r for r in rs])
    s = run_job(store, settings, text_encoder, image_encoder, catalog)
    assert (s.written, s.text_encoded, s.image_encoded) == (1, 0, 0)
    stored = store.get(txt_pid, with_vectors=True)
    assert stored is not None and stored["price"] == 1.0 and set(stored["_vectors"]) >= {"text", "image"}


def test_removed_products_are_deleted_but_a_mass_delete_is_refused(store, settings, text_encoder,
                                                                   image_encoder, tmp_path):
    catalog = small_catalog(tmp_path / "cat", 10)
    run_job(store, settings, text_encoder, image_encoder, catalog)
    rewrite_rows(catalog, lambda rs: rs[1:])
    s = run_job(store, settings, text_encoder, image_encoder, catalog)
    assert s.deleted == 1 and store.count() == 9

    rewrite_rows(catalog, lambda rs: rs[:3])
    with pytest.raises(MassDeleteRefused, match="allow-mass-delete"):
        run_job(store, settings, text_encoder, image_encoder, catalog)
    assert store.count() == 9
    s = run_job(store, settings, text_encoder, image_encoder, catalog, allow_mass_delete=True)
    assert s.deleted == 6 and store.count() == 3


def test_bad_catalog_loads_good_rows_and_reports_each_bad_one(store, settings, text_encoder,
                                                              image_encoder, tmp_path):
    catalog = tmp_path / "bad"
    (catalog / "images").mkdir(parents=True)
    Image.new("RGB", (40, 40), (200, 0, 0)).save(catalog / "images" / "ok.png")
    good_png = (catalog / "images" / "ok.png").read_bytes()
    (catalog / "images" / "truncated.png").write_bytes(good_png[: len(good_png) // 2])
    (catalog / "images" / "text.png").write_text("not an image")
    Image.new("RGB", (40, 40)).save(catalog / "images" / "photo.eps")  # not an allowed format
    Image.new("L", (1, 100_000)).save(catalog / "images" / "strip.png")  # ~1 KB, refused from its header
    (catalog / "products.csv").write_bytes(
        b"product_id,title,price,image,surprise_column\n"
        b"g1,Good with image,10,images/ok.png,x\n"
        b"g2,Missing image file,10,images/nope.png,\n"
        b"g3,Truncated png,10,images/truncated.png,\n"
        b"g4,Not an image,10,images/text.png,\n"
        b"g5,Escapes folder,10,../../etc/passwd,\n"
        b"g1,Duplicate id,10,images/ok.png,\n"
        b"b2,,10,images/ok.png,\n"
        b"b3,Bad price,ten,images/ok.png,\n"
        b"b4,Caf\xe9,10,images/ok.png,\n"
        b"g6,No image at all,,,\n"
        b"g7,Eps image,10,images/photo.eps,\n"
        b"g8,Endless strip,10,images/strip.png,\n"
    )
    s = run_job(store, settings, text_encoder, image_encoder, catalog)
    assert sorted(store.iter_ids()) == ["g1", "g2", "g3", "g4", "g5", "g6", "g7", "g8"]
    assert {(e.line, e.field) for e in s.errors} == {(7, "product_id"), (8, "title"), (9, "price"),
                                                     (10, "title")}
    problems = dict(s.image_problems)
    assert set(problems) == {"g2", "g3", "g4", "g5", "g7", "g8"}
    assert "not found" in problems["g2"] and "outside" in problems["g5"]
    assert "allowed format" in problems["g7"] and "side limit" in problems["g8"]
    vecs = store.vectors(["g1", "g2", "g3", "g4", "g5", "g6", "g7", "g8"])
    assert set(vecs["g1"]) == {"text", "image"}
    for pid in ("g2", "g3", "g4", "g5", "g6", "g7", "g8"):
        assert set(vecs[pid]) == {"text"}
    g3 = store.get("g3")
    assert (g3 is not None and "truncated" in g3["image_error"]) or "corrupt" in g3["image_error"]
    assert s.without_image == 7
    again = run_job(store, settings, text_encoder, image_encoder, catalog)
    assert again.written == 0, "bad images must not be retried forever when nothing changed"


def test_failed_objects_fail_loudly(store, settings, text_encoder, image_encoder, tmp_path):
    from recommender.catalog.fingerprints import Fingerprints
    from recommender.domain import Product
    from recommender.store.products import StoredProduct

    run_job(store, settings, text_encoder, image_encoder, small_catalog(tmp_path / "cat", 3))
    wrong_dim = StoredProduct(Product("weird", "Weird"), Fingerprints("a", "", "c"),
                              {"text": np.ones(7, dtype=np.float32) / np.sqrt(7)})
    with pytest.raises(StoreError, match="weird"):
        store.upsert([wrong_dim])


def test_killed_mid_run_then_rerun_equals_a_clean_run(weaviate_server, settings, store, text_encoder,
                                                      image_encoder, tmp_path):
    catalog = small_catalog(tmp_path / "cat", 120)
    partial = kill_vectorize_mid_run(settings, store, catalog, {})

    resumed = run_job(store, settings, text_encoder, image_encoder, catalog)
    assert resumed.skipped_unchanged == partial  # what was written before the kill is not redone
    killed_then_resumed = store_state(store)

    clean = replace(settings.weaviate, collection=settings.weaviate.collection + "Clean")
    with ProductStore.open(clean) as fresh:
        try:
            run_job(fresh, settings, text_encoder, image_encoder, catalog)
            assert_same_state(store_state(fresh), killed_then_resumed)
        finally:
            fresh.drop()


def test_each_image_vector_is_stored_with_its_hubness_penalty_also_when_the_vector_is_reused(
        store, settings, text_encoder, image_encoder, tmp_path):
    catalog = small_catalog(tmp_path / "cat", 8)
    rows = read_rows(catalog / "products.csv")
    # the reference: the (untrained) image vectors of the first two products, so their penalties are the largest
    images = [Image.open(catalog / r["image"]).convert("RGB") for r in rows[:2]]
    correction = HubnessCorrection(image_encoder.encode_batch(images), k=1, weight=0.5)
    job = Vectorizer(store, text_encoder, image_encoder, settings.vectorize, progress=False, hubness=correction)
    job.run(catalog)

    def stored_penalties() -> dict[str, tuple[float, float]]:
        out = {}
        for r in rows:
            obj = store.get(r["product_id"], with_vectors=True)
            assert obj is not None
            expected = float(correction.penalty(obj["_vectors"]["image"][None, :])[0])
            out[r["product_id"]] = (float(obj["image_penalty"]), expected)
        return out

    first = stored_penalties()
    assert all(got == pytest.approx(want, abs=1e-5) for got, want in first.values())
    assert first[rows[0]["product_id"]][0] == pytest.approx(0.5, abs=1e-4)  # its own vector is its reference
    assert len({round(got, 6) for got, _ in first.values()}) > 2
    # a title change re-encodes the text only: the reused image vector's penalty is written again, not lost
    retitled = rows[0]["product_id"]
    rewrite_rows(catalog, lambda rs: [dict(r, title=r["title"] + " deluxe") if r["product_id"] == retitled
                                      else r for r in rs])
    summary = job.run(catalog)
    assert (summary.written, summary.image_encoded) == (1, 0)
    assert stored_penalties()[retitled][0] == pytest.approx(first[retitled][0], abs=1e-6)


def test_a_collection_from_before_the_penalty_gets_the_property_added(store, settings):
    from weaviate.classes.config import Configure

    from recommender.store.products import PROPERTIES, VECTOR_NAMES

    store._client.collections.create(  # what an earlier version created: no image_penalty
        store.name, vector_config=[Configure.Vectors.self_provided(name=n) for n in VECTOR_NAMES],
        properties=[p for p in PROPERTIES if p.name != "image_penalty"])
    store.ensure_collection()
    names = {p.name for p in store._client.collections.get(store.name).config.get().properties}
    assert names == {p.name for p in PROPERTIES}
    store.ensure_collection()  # idempotent
