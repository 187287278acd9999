"""Multimodal search end to end in-process: the Flask app (test client) and the CLI against a real Weaviate
holding the fixture catalog, real text encoder, real (untrained, small) image tower."""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image

from api.app import create_app
from api.state import AppState
from recommender.catalog.fingerprints import Fingerprints
from recommender.config import Settings, WeaviateSettings, load_settings
from recommender.domain import Product
from recommender.encoders.image import OpenClipImageEncoder
from recommender.encoders.text import SentenceTransformerEncoder
from recommender.search.searcher import QueryEncoders, Searcher, SearchRequest
from recommender.store.products import ProductStore, StoredProduct
from tests.integration.conftest import FIXTURES, IMAGE_SIZE

pytestmark = pytest.mark.integration



def _rows(name: str) -> dict[str, dict[str, str]]:
    with (FIXTURES / name).open(newline="") as fh:
        return {r["product_id"]: r for r in csv.DictReader(fh)}


PRODUCTS = _rows("products.csv")
TRUTH = _rows("truth.csv")


def settings_for(weaviate: WeaviateSettings, **overrides: Any) -> Settings:
    return load_settings(env={}, overrides={
        "weaviate.host": weaviate.host, "weaviate.http_port": weaviate.http_port,
        "weaviate.grpc_port": weaviate.grpc_port, "weaviate.collection": weaviate.collection,
        "image_encoder.image_size": IMAGE_SIZE, **overrides})


def make_app(settings: Settings, text_encoder: SentenceTransformerEncoder,
             image_encoder: OpenClipImageEncoder) -> Flask:
    """The real app; its encoders are the session's already-loaded ones (same settings) to save load time."""
    app = create_app(settings)
    state: AppState = app.extensions["recsys"]
    state.encoders = QueryEncoders(lambda: text_encoder, lambda: image_encoder)
    return app


@pytest.fixture(scope="module")
def app(fixtures_weaviate: WeaviateSettings, text_encoder: SentenceTransformerEncoder,
        image_encoder: OpenClipImageEncoder) -> Iterator[Flask]:
    app = make_app(settings_for(fixtures_weaviate), text_encoder, image_encoder)
    yield app
    app.extensions["recsys"].close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def search(client: FlaskClient, status: int = 200, **body: Any) -> dict[str, Any]:
    resp = client.post("/v1/search", json=body)
    assert resp.status_code == status, resp.get_json()
    return resp.get_json()  # type: ignore[no-any-return]


def ids(body: dict[str, Any]) -> list[str]:
    return [r["product_id"] for r in body["results"]]


def image_bytes(pid: str) -> bytes:
    return (FIXTURES / "images" / f"{pid}.png").read_bytes()


def encoded_image(image: Image.Image, fmt: str) -> bytes:
    """``image`` saved in ``fmt`` (PIL's format name)."""
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return buf.getvalue()


def assert_error(resp: Any, status: int, field: str | None) -> dict[str, Any]:
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == "application/json"
    err = resp.get_json()["error"]
    assert set(err) == {"code", "message", "field"} and err["message"]
    assert err["field"] == field, err
    return err  # type: ignore[no-any-return]


def test_text_query_ranks_products_with_that_colour_and_type_first(client: FlaskClient) -> None:
    yellow_jeans = {p for p, t in TRUTH.items() if (t["product_type"], t["color"]) == ("jeans", "yellow")}
    body = search(client, text="yellow jeans", k=10)
    assert set(ids(body)[: len(yellow_jeans)]) == yellow_jeans
    assert body["weights"] == {"text->text": 1.0, "text->image": 0.5}
    for hit in body["results"]:  # every candidate got both cosines (missing ones fetched), fused as configured
        assert set(hit["scores"]) == {"text->text", "text->image"}
        assert hit["score"] == pytest.approx(hit["scores"]["text->text"] + 0.5 * hit["scores"]["text->image"],
                                             abs=1e-5)
    scores = [r["score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)

    white_sneakers = {p for p, t in TRUTH.items() if (t["product_type"], t["color"]) == ("sneakers", "white")}
    top = ids(search(client, text="white sneakers", vectors=["text"], k=len(white_sneakers)))
    assert all(TRUTH[p]["product_type"] == "sneakers" for p in top)
    assert len(set(top) & white_sneakers) >= len(white_sneakers) // 2  # some hide their colour in the text


@pytest.mark.parametrize("pid", ["P00003", "P00100", "P00251"])
def test_image_upload_returns_that_product_first_multipart_and_base64(client: FlaskClient, pid: str) -> None:
    resp = client.post("/v1/search", data={"image": (io.BytesIO(image_bytes(pid)), f"{pid}.png"),
                                           "vectors": "image", "k": "3"}, content_type="multipart/form-data")
    assert resp.status_code == 200, resp.get_json()
    hits = resp.get_json()["results"]
    assert hits[0]["product_id"] == pid and hits[0]["scores"]["image->image"] == pytest.approx(1.0, abs=1e-4)

    b64 = search(client, image_base64=base64.b64encode(image_bytes(pid)).decode(), vectors=["image"], k=3)
    assert ids(b64)[0] == pid


def test_image_query_by_default_fuses_image_and_cross_modal_text_scores(client: FlaskClient) -> None:
    body = search(client, image_base64=base64.b64encode(image_bytes("P00003")).decode(), k=5)
    assert body["weights"] == {"image->text": 0.5, "image->image": 1.0}
    assert all(set(h["scores"]) == {"image->text", "image->image"} for h in body["results"])
    mixed = search(client, text="yellow jeans", image_base64=base64.b64encode(image_bytes("P00003")).decode(), k=5)
    assert set(mixed["weights"]) == {"text->text", "text->image", "image->text", "image->image"}
    assert ids(mixed)[0] == "P00003"  # matches on both the words and the exact picture


def test_filters_are_pushed_down_into_weaviate(client: FlaskClient) -> None:
    hats = {p for p, r in PRODUCTS.items() if r["category"] == "Unisex > Accessories > Hats"}
    # Pushed down, not post-filtered: the query's own top-N holds hardly any hats, yet k hats come back.
    body = search(client, text="yellow jeans", filters={"category": "Unisex > Accessories"}, k=len(hats))
    assert len(body["results"]) == len(hats)
    assert all(r["category"].startswith("Unisex > Accessories > ") for r in body["results"])

    cheap = search(client, text="jeans", filters={"price_max": 40, "price_min": 20}, k=30)
    assert cheap["results"] and all(20 <= r["price"] <= 40 for r in cheap["results"])
    expected = {p for p, r in PRODUCTS.items() if 20 <= float(r["price"]) <= 40}
    assert set(ids(cheap)) <= expected

    sold_out = sorted(p for p, r in PRODUCTS.items() if r["in_stock"] == "false")
    title = PRODUCTS[sold_out[0]]["title"]
    assert ids(search(client, text=title, vectors=["text"], k=1)) == [sold_out[0]]
    in_stock = search(client, text=title, vectors=["text"], filters={"in_stock": True}, k=50)
    assert not set(ids(in_stock)) & set(sold_out) and len(in_stock["results"]) == 50
    only_sold_out = search(client, text=title, vectors=["text"], filters={"in_stock": False}, k=50)
    assert ids(only_sold_out) and set(ids(only_sold_out)) <= set(sold_out)

    form = client.post("/v1/search", data={"text": "jeans", "category": "Women > Bottoms > Jeans", "in_stock": "true",
                                           "price_max": "70", "k": "20"}, content_type="multipart/form-data")
    hits = form.get_json()["results"]
    assert hits and all(r["category"] == "Women > Bottoms > Jeans" and r["price"] <= 70 for r in hits)
    assert all(PRODUCTS[r["product_id"]]["in_stock"] == "true" for r in hits)


@pytest.mark.parametrize(("body", "status", "field"), [
    ({}, 400, "text"),
    ({"text": "  "}, 400, "text"),
    ({"text": "jeans", "vectors": ["colour"]}, 400, "vectors"),
    ({"text": "jeans", "vectors": "text"}, 400, "vectors"),
    ({"text": "jeans", "k": 0}, 400, "k"),
    ({"text": "jeans", "k": 101}, 400, "k"),
    ({"text": "jeans", "k": "ten"}, 400, "k"),
    ({"text": "jeans", "filters": {"price_min": 50, "price_max": 10}}, 400, "filters.price_min"),
    ({"text": "jeans", "filters": {"price_max": -3}}, 400, "filters.price_max"),
    ({"text": "jeans", "filters": {"colour": "red"}}, 400, "filters.colour"),
    ({"text": "jeans", "weights": {"text->behavior": 1}}, 400, "weights"),
    ({"text": "jeans", "weights": {"text->text": 1e308, "text->image": 1e308}}, 400, "weights"),
    ({"image_base64": "%%%not base64%%%"}, 400, "image"),
    ({"image_base64": base64.b64encode(b"plain text, not a picture").decode()}, 422, "image"),
])
def test_bad_json_input_gets_a_json_error_naming_the_field(client: FlaskClient, body: dict[str, Any], status: int,
                                                           field: str) -> None:
    assert_error(client.post("/v1/search", json=body), status, field)


def test_bad_uploads_and_http_errors_are_json(client: FlaskClient) -> None:
    not_image = {"image": (io.BytesIO(b"GIF89a but truncated"), "x.gif")}
    assert_error(client.post("/v1/search", data=not_image, content_type="multipart/form-data"), 422, "image")
    assert_error(client.post("/v1/search", data={"text": "jeans", "k": "many"},
                             content_type="multipart/form-data"), 400, "k")
    huge = io.BytesIO()
    Image.new("RGB", (6000, 5000), (250, 250, 0)).save(huge, format="PNG")  # 30 MP, tiny file: pixel limit
    err = assert_error(client.post("/v1/search", data={"image": (io.BytesIO(huge.getvalue()), "huge.png")},
                                   content_type="multipart/form-data"), 413, "image")
    assert "pixel" in err["message"]
    strip = encoded_image(Image.new("L", (1, 100_000), 0), "PNG")  # ~1 KB file, refused from its header
    err = assert_error(client.post("/v1/search", data={"image": (io.BytesIO(strip), "strip.png")},
                                   content_type="multipart/form-data"), 413, "image")
    assert "1x100000" in err["message"]
    tiff = base64.b64encode(encoded_image(Image.new("RGB", (8, 8)), "TIFF")).decode()
    err = assert_error(client.post("/v1/search", json={"image_base64": tiff}), 422, "image")
    assert "allowed format" in err["message"]
    assert_error(client.post("/v1/search", data="text=jeans", content_type="text/plain"), 415, "body")
    assert_error(client.post("/v1/search", data="{not json", content_type="application/json"), 400, "body")
    assert_error(client.get("/v1/search"), 405, None)
    assert_error(client.get("/v1/nothing-here"), 404, None)


def test_request_and_image_size_limits_answer_413(fixtures_weaviate: WeaviateSettings,
                                                  text_encoder: SentenceTransformerEncoder,
                                                  image_encoder: OpenClipImageEncoder) -> None:
    settings = settings_for(fixtures_weaviate, **{"api.max_content_length": 4096, "search.max_image_bytes": 512})
    app = make_app(settings, text_encoder, image_encoder)
    try:
        client = app.test_client()
        big_body = {"text": "jeans", "image_base64": base64.b64encode(b"\0" * 8000).decode()}
        err = assert_error(client.post("/v1/search", json=big_body), 413, None)
        assert "4096" in err["message"]
        err = assert_error(client.post("/v1/search", data={"image": (io.BytesIO(image_bytes("P00003")), "a.png")},
                                       content_type="multipart/form-data"), 413, "image")
        assert "512-byte limit" in err["message"]
    finally:
        app.extensions["recsys"].close()


def test_form_without_a_chosen_file_is_a_text_query(client: FlaskClient) -> None:
    resp = client.post("/v1/search", data={"text": "yellow jeans", "image": (io.BytesIO(b""), ""), "k": "1"},
                       content_type="multipart/form-data")
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["results"][0]["product_id"] == "P00003"


def test_health_and_readiness(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    resp = client.get("/readyz")
    body = resp.get_json()
    assert resp.status_code == 200 and body["status"] == "ready"
    assert body["warmup"] is None and body["cold_loads"] == body["encoders"]  # warm-up off: any load was cold


def test_cli_search_prints_ranked_hits_with_per_vector_scores(fixtures_weaviate: WeaviateSettings,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    from jobs.cli import main

    for name, value in {"HOST": fixtures_weaviate.host, "HTTP_PORT": str(fixtures_weaviate.http_port),
                        "GRPC_PORT": str(fixtures_weaviate.grpc_port),
                        "COLLECTION": fixtures_weaviate.collection}.items():
        monkeypatch.setenv(f"RECSYS_WEAVIATE__{name}", value)
    assert main(["search", "yellow jeans", "--vector", "text", "--category", "Women > Bottoms", "--price-max", "70",
                 "--in-stock", "-k", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("3 hits") and "text->text×1" in lines[0]
    assert lines[1].startswith("  1.") and "P00003" in lines[1] and "text->text=0." in lines[1]
    assert "text->image" not in "\n".join(lines)
    assert main(["search", "-k", "3"]) == 2  # empty query: one clear error line, exit code 2
    assert "give a text query" in capsys.readouterr().err


class FixedQuery:
    """Encoder[str] whose every query is the same unit vector (the stored vectors below are set by hand)."""

    identity, dim = "fixed-query", 4

    def encode_batch(self, items: Sequence[str]) -> np.ndarray:
        return np.tile(np.array([1.0, 0.0, 0.0, 0.0], np.float32), (len(items), 1))


def test_text_to_image_scores_lose_each_image_s_stored_hubness_penalty(weaviate_server,  # type: ignore[no-untyped-def]
                                                                        weaviate_collection_name: str) -> None:
    weaviate = WeaviateSettings(host=weaviate_server.host, http_port=weaviate_server.http_port,
                                grpc_port=weaviate_server.grpc_port, collection=weaviate_collection_name)

    def item(pid: str, cosine: float, penalty: float) -> StoredProduct:
        image = np.array([cosine, np.sqrt(1 - cosine ** 2), 0.0, 0.0], np.float32)
        text = np.array([0.0, 0.0, 1.0, 0.0], np.float32)  # orthogonal to the query: text->text adds 0
        return StoredProduct(Product(pid, f"product {pid}"), Fingerprints("t", "i", "p"),
                             {"text": text, "image": image}, image_penalty=penalty)

    with ProductStore.open(weaviate) as store:
        store.ensure_collection()
        try:
            store.upsert([item("hub", 0.9, 0.5), item("plain", 0.8, 0.0), item("old", 0.6, 0.0)])
            encoders = QueryEncoders(lambda: FixedQuery(), lambda: None)  # type: ignore[arg-type,return-value]
            searcher = Searcher(store, encoders, Settings().search)
            result = searcher.search(SearchRequest(text="anything", vectors=("image",)))
            assert [h.product_id for h in result.hits] == ["plain", "old", "hub"]
            scores = {h.product_id: h.scores["text->image"] for h in result.hits}
            assert scores == pytest.approx({"plain": 0.8, "old": 0.6, "hub": 0.4}, abs=1e-5)
            # the image->image signal is a plain cosine: an image query is not corrected
            both = searcher.search(SearchRequest(text="anything"))
            assert both.hits[0].scores["text->image"] == pytest.approx(0.8, abs=1e-5)
        finally:
            store.drop()


def test_colour_brand_level_and_must_not_filters_hold_on_the_image_path_too(client: FlaskClient) -> None:
    photo = base64.b64encode(image_bytes("P00003")).decode()
    body = search(client, image_base64=photo, k=20,
                  filters={"color": ["blue", "navy"], "exclude": {"level": "Jeans", "brand": "Northwind"}})
    assert body["results"]
    for pid in ids(body):
        row = PRODUCTS[pid]
        assert row["color"] in ("blue", "navy") and "Jeans" not in row["category"] and row["brand"] != "Northwind"
    text = search(client, text="sneakers", k=10, filters={"level": "sneakers", "exclude": {"color": "white"}})
    assert text["results"] and all(PRODUCTS[p]["category"].endswith("Sneakers") and PRODUCTS[p]["color"] != "white"
                                   for p in ids(text))
    bad = client.post("/v1/search", json={"text": "x", "filters": {"exclude": {"size": "XL"}}})
    assert_error(bad, 400, "filters.exclude.size")
