"""The Ray engine (`recsys vectorize --engine ray`) against a real local Ray (2 CPUs) and a real Weaviate (the
3-node local cluster, replication factor 3, for the equality test; one node for the others).

It must leave the store exactly as the local engine does (objects, properties, fingerprints, vectors), skip what
is unchanged, fail loudly naming the products when a write fails, end a killed-and-resumed run like a clean one,
and leave no Ray process behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from recommender import components
from recommender.catalog.fingerprints import Fingerprints
from recommender.catalog.reader import load_catalog
from recommender.config import Settings, WeaviateSettings, load_settings
from recommender.domain import Product
from recommender.errors import StoreError
from recommender.store.cluster import LocalCluster
from recommender.store.products import ProductStore, StoredProduct
from recommender.vectorize import Vectorizer, VectorizeSummary
from tests.catalogs import small_catalog
from tests.integration.conftest import FIXTURES, IMAGE_SIZE
from tests.vectorize_runs import assert_same_state, kill_vectorize_mid_run, store_state

pytestmark = pytest.mark.integration


@pytest.fixture
def ray_tmp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A short Ray temp root of this test's own (Ray's socket paths must stay short), so its processes can be found."""
    root = Path(tempfile.mkdtemp(prefix="rt-", dir="/tmp"))
    monkeypatch.setenv("RAY_TMPDIR", str(root))
    yield root
    left = ray_processes(root)
    for line in left:  # stop what this test's Ray left, so a failure here does not leak into the machine
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(line.split(":", 1)[0]), signal.SIGKILL)
    shutil.rmtree(root, ignore_errors=True)
    assert left == [], "Ray processes were left behind"


def ray_processes(root: Path, wait_s: float = 15.0) -> list[str]:
    """Command lines of live processes of the Ray under ``root``, after waiting up to ``wait_s`` for them to end."""
    deadline = time.monotonic() + wait_s
    while True:
        found = []
        for proc in Path("/proc").iterdir():
            try:
                cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if proc.name.isdigit() and str(root) in cmd:
                found.append(f"{proc.name}: {cmd[:120]}")
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


@pytest.fixture
def settings(weaviate_server, weaviate_collection_name: str, tmp_path: Path) -> Settings:  # type: ignore[no-untyped-def]
    return load_settings(env={}, overrides={
        "data_dir": tmp_path / "data",
        "weaviate.host": weaviate_server.host,
        "weaviate.http_port": weaviate_server.http_port,
        "weaviate.grpc_port": weaviate_server.grpc_port,
        "weaviate.collection": weaviate_collection_name,
        "image_encoder.image_size": IMAGE_SIZE,
        "vectorize.engine": "ray",
        "vectorize.ray_num_cpus": 2,
        "vectorize.chunk_size": 32,
    })


@pytest.fixture
def store(settings: Settings) -> Iterator[ProductStore]:
    with ProductStore.open(settings.weaviate) as s:
        yield s
        s.drop()


@pytest.fixture
def cluster_settings(weaviate_cluster: LocalCluster, settings: Settings) -> Settings:
    """The same run into a replication-factor-3 collection on the 3-node local cluster (every node listed)."""
    base = replace(settings.weaviate, replication_factor=3, read_consistency="QUORUM", write_consistency="QUORUM",
                   job_timeout_s=60.0)
    return replace(settings, weaviate=weaviate_cluster.client_settings(base))


@pytest.fixture
def cluster_store(cluster_settings: Settings) -> Iterator[ProductStore]:
    with ProductStore.open(cluster_settings.weaviate, job=True) as s:
        yield s
        s.drop()


def run_ray(store: ProductStore, settings: Settings, catalog: Path) -> VectorizeSummary:
    return components.vectorizer(settings, store, progress=False).run(catalog)


def test_ray_engine_into_a_cluster_stores_what_the_local_engine_stores_and_skips_it_next_time(
        fixtures_weaviate: WeaviateSettings, cluster_store, cluster_settings, ray_tmp):
    store, settings = cluster_store, cluster_settings
    summary = run_ray(store, settings, FIXTURES)
    total = len(load_catalog(FIXTURES).products)
    assert (summary.written, summary.text_encoded, summary.image_encoded, summary.invalid) == (total, total, total, 0)
    assert summary.line().startswith(f"vectorize: read={total} invalid=0 text_encoded={total}")
    assert {"plan", "encode_text", "encode_image", "write", "pipeline"} <= set(summary.seconds)
    assert store.layout()["replication_factor"] == 3
    by_ray = store_state(store)
    assert all(props["fp_text"] and props["fp_image"] and props["fp_properties"] for props in by_ray[0].values())
    with ProductStore.open(fixtures_weaviate) as local:  # the fixture catalog, vectorized by the local engine
        assert_same_state(by_ray, store_state(local))

    again = run_ray(store, settings, FIXTURES)
    assert (again.written, again.text_encoded, again.image_encoded, again.deleted) == (0, 0, 0, 0)
    assert again.skipped_unchanged == total


def test_a_failed_write_fails_the_ray_run_loudly_naming_the_products(store, settings, ray_tmp, tmp_path):
    store.ensure_collection()  # a 7-d text vector fixes the collection's text dimension; 384-d writes then fail
    store.upsert([StoredProduct(Product("weird", "Weird"), Fingerprints("a", "", "c"),
                                {"text": np.ones(7, dtype=np.float32) / np.sqrt(7)})])
    catalog = small_catalog(tmp_path / "cat", 3)
    first = load_catalog(catalog).products[0].product_id
    with pytest.raises(StoreError, match=f"failed to write.*{first}"):
        run_ray(store, settings, catalog)
    assert sorted(store.iter_ids()) == ["weird"]


def test_ray_run_killed_mid_run_then_rerun_equals_a_clean_run(weaviate_server, store, settings, ray_tmp,
                                                              text_encoder, image_encoder, tmp_path):
    catalog = small_catalog(tmp_path / "cat", 120)
    partial = kill_vectorize_mid_run(settings, store, catalog, {"RECSYS_VECTORIZE__RAY_NUM_CPUS": "2"},
                                     ["--engine", "ray"], wait_s=240)
    total = len(load_catalog(catalog).products)
    assert ray_processes(ray_tmp) == [], "the killed run's Ray processes outlived it"

    resumed = run_ray(store, settings, catalog)
    assert resumed.skipped_unchanged == partial  # what was written before the kill is not redone
    assert resumed.written == total - partial

    clean = replace(settings.weaviate, collection=settings.weaviate.collection + "Clean")
    with ProductStore.open(clean) as fresh:  # one clean run, by the local engine
        try:
            Vectorizer(fresh, text_encoder, image_encoder, settings.vectorize, progress=False).run(catalog)
            assert_same_state(store_state(fresh), store_state(store))
        finally:
            fresh.drop()
