"""The train job against a real SQLite log, real implicit and a real Weaviate holding vectorized products."""

from __future__ import annotations

import csv
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from jobs.cli import main
from recommender.behaviour.als import ArtifactStore
from recommender.catalog.fingerprints import Fingerprints
from recommender.config import ImageEncoderSettings, Settings, load_settings
from recommender.domain import Product
from recommender.encoders.image import OpenClipImageEncoder
from recommender.encoders.text import SentenceTransformerEncoder
from recommender.errors import StoreError
from recommender.store.products import ProductStore, StoredProduct
from recommender.vectorize import Vectorizer
from tests.catalogs import read_rows

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
N_PRODUCTS = 48
IMAGE_SIZE = 64


def unit(rng: np.random.Generator, dim: int) -> np.ndarray:
    v = rng.normal(size=dim).astype(np.float32)
    return v / np.linalg.norm(v)


@pytest.fixture
def settings(weaviate_server, weaviate_collection_name: str, tmp_path: Path,
             monkeypatch: pytest.MonkeyPatch) -> Settings:
    env = {"RECSYS_WEAVIATE__HOST": weaviate_server.host,
           "RECSYS_WEAVIATE__HTTP_PORT": str(weaviate_server.http_port),
           "RECSYS_WEAVIATE__GRPC_PORT": str(weaviate_server.grpc_port),
           "RECSYS_WEAVIATE__COLLECTION": weaviate_collection_name,
           "RECSYS_DATA_DIR": str(tmp_path / "data"),
           "RECSYS_IMAGE_ENCODER__IMAGE_SIZE": str(IMAGE_SIZE)}
    for k, v in env.items():
        monkeypatch.setenv(k, v)  # what `main()` reads
    return load_settings(env=env)


@pytest.fixture
def store(settings: Settings):
    with ProductStore.open(settings.weaviate) as s:
        yield s
        s.drop()


def busy_catalog(dest: Path) -> tuple[Path, list[dict[str, str]]]:
    """The fixture products with the most events (and their images), with the events among them plus bad rows."""
    with (FIXTURES / "events.csv").open(newline="") as fh:
        events = list(csv.DictReader(fh))
    keep = {pid for pid, _ in Counter(e["product_id"] for e in events).most_common(N_PRODUCTS)}
    with (FIXTURES / "products.csv").open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["product_id"] in keep]
    (dest / "images").mkdir(parents=True)
    with (dest / "products.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    for row in rows:
        shutil.copy(FIXTURES / row["image"], dest / row["image"])
    kept = [e for e in events if e["product_id"] in keep]
    with (dest / "events.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(kept[0]))
        writer.writeheader()
        writer.writerows(kept)
        writer.writerow({**kept[0], "product_id": "P99999"})
        writer.writerow({**kept[0], "timestamp": "last tuesday"})
    return dest, kept


def test_set_vector_keeps_text_image_and_properties_and_clear_removes_only_it(store: ProductStore) -> None:
    rng = np.random.default_rng(0)
    store.ensure_collection()
    items = [StoredProduct(Product(f"x{i}", f"Thing {i}", price=float(i)), Fingerprints("t", "i", "p"),
                           {"text": unit(rng, 16), "image": unit(rng, 8)}) for i in range(3)]
    store.upsert(items)
    factors = {"x0": unit(rng, 4), "x1": unit(rng, 4)}
    assert store.set_vector("behavior", factors) == 2
    got = store.vectors(["x0", "x1", "x2"])
    for i, pid in enumerate(("x0", "x1")):
        assert set(got[pid]) == {"text", "image", "behavior"}
        assert np.allclose(got[pid]["text"], items[i].vectors["text"])
        assert np.allclose(got[pid]["image"], items[i].vectors["image"])
        assert np.allclose(got[pid]["behavior"], factors[pid])
    assert set(got["x2"]) == {"text", "image"}
    assert store.ids_with_vector("behavior") == {"x0", "x1"}
    x0 = store.get("x0")
    assert x0 is not None and x0["title"] == "Thing 0" and x0["fp_text"] == "t"

    assert store.clear_vector("behavior", ["x1", "x2", "absent"]) == 1
    after = store.get("x1", with_vectors=True)
    assert after is not None and set(after["_vectors"]) == {"text", "image"} and after["price"] == 1.0
    assert np.allclose(after["_vectors"]["text"], items[1].vectors["text"])
    with pytest.raises(StoreError, match="nobody"):
        store.set_vector("behavior", {"nobody": unit(rng, 4)})


def test_train_writes_behaviour_vectors_that_reflect_co_occurrence(settings, store, tmp_path, capsys):
    catalog, events = busy_catalog(tmp_path / "cat")
    text = SentenceTransformerEncoder(settings.text_encoder)
    image = OpenClipImageEncoder(ImageEncoderSettings(image_size=IMAGE_SIZE))
    Vectorizer(store, text, image, settings.vectorize, progress=False).run(catalog)

    assert main(["train", "--catalog", str(catalog), "--no-progress"]) == 0
    out = capsys.readouterr()
    assert "P99999" in out.err and "timestamp" in out.err
    assert f"imported {len(events)}, rejected 2, duplicates 0" in out.out

    artifacts = ArtifactStore.in_data_dir(settings.data_dir).load()
    trained = set(artifacts.model.behaviour_vectors())
    assert len(trained) == N_PRODUCTS
    vectors = store.vectors(sorted(trained))
    assert all(set(v) == {"text", "image", "behavior"} for v in vectors.values())

    # Direction only: a product's behaviour neighbours co-occur with it more often than products at large do.
    co, hits, base = artifacts.cooccurrence, [], []
    for pid in sorted(trained):
        partners = {c.product_id for c in co.co_occurring(pid, N_PRODUCTS)}
        neighbours = [h.product_id for h in store.near_vector(vectors[pid]["behavior"], "behavior", k=6)][1:]
        hits.append(len(partners & set(neighbours)) / len(neighbours))
        base.append(len(partners) / (N_PRODUCTS - 1))
    assert np.mean(hits) > np.mean(base) + 0.1, (np.mean(hits), np.mean(base))

    assert main(["train", "--catalog", str(catalog), "--no-progress"]) == 0
    again = capsys.readouterr().out
    assert "imported 0" in again and "unchanged, not refitted" in again and "vectors written 0" in again

    # Vectorize rewriting a product keeps its behavior vector.
    first = sorted(trained)[0]
    rows = read_rows(catalog / "products.csv")
    rows = [dict(r, title=r["title"] + " deluxe") if r["product_id"] == first else r for r in rows]
    with (catalog / "products.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert Vectorizer(store, text, image, settings.vectorize, progress=False).run(catalog).written == 1
    assert np.allclose(store.vectors([first])[first]["behavior"], vectors[first]["behavior"])


def test_until_trains_on_the_past_and_drops_vectors_of_products_that_left(settings, store, tmp_path, capsys,
                                                                          monkeypatch):
    rng = np.random.default_rng(1)
    store.ensure_collection()
    store.upsert([StoredProduct(Product(p, p), Fingerprints("t", "", "p"), {"text": unit(rng, 8)})
                  for p in ("a", "b", "c", "d")])
    catalog = tmp_path / "cat"
    catalog.mkdir()
    (catalog / "products.csv").write_text("product_id,title\na,A\nb,B\nc,C\nd,D\n")
    (catalog / "events.csv").write_text(
        "user_id,product_id,event,timestamp\n"
        "u1,a,view,2024-01-01T10:00:00Z\nu1,b,purchase,2024-01-01T10:05:00Z\n"
        "u2,a,cart,2024-01-02T10:00:00Z\nu2,c,view,2024-01-02T10:05:00Z\n"
        "u3,d,view,2024-02-01T10:00:00Z\nu3,a,view,2024-02-01T10:05:00Z\n")
    assert main(["train", "--catalog", str(catalog), "--no-progress"]) == 0
    assert store.ids_with_vector("behavior") == {"a", "b", "c", "d"}
    first = ArtifactStore.in_data_dir(settings.data_dir).current_version()

    assert main(["train", "--catalog", str(catalog), "--until", "2024-01-15T00:00:00Z", "--no-progress"]) == 0
    assert "cleared 1" in capsys.readouterr().out
    assert store.ids_with_vector("behavior") == {"a", "b", "c"}
    d = store.get("d", with_vectors=True)
    assert d is not None and set(d["_vectors"]) == {"text"}
    artifacts = ArtifactStore.in_data_dir(settings.data_dir)
    assert artifacts.current_version() != first and artifacts.load().meta["events"] == 4
    assert artifacts.load().cooccurrence.count("a", "d") == 0 and artifacts.load().cooccurrence.count("a", "b") == 1

    # Weaviate fixes a named vector's length: another factor count is refused before anything is published.
    version = artifacts.current_version()
    monkeypatch.setenv("RECSYS_COLLABORATIVE__FACTORS", "8")
    assert main(["train", "--catalog", str(catalog), "--no-progress"]) == 2
    assert "dimensions" in capsys.readouterr().err and artifacts.current_version() == version
