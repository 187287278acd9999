"""What the vectorize tests of both engines share: the state a run leaves, and a job killed part-way."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from recommender.catalog.reader import load_catalog
from recommender.config import Settings
from recommender.store.products import ProductStore
from tests.integration.conftest import IMAGE_SIZE, REPO

State = tuple[dict[str, dict], dict[str, dict[str, np.ndarray]]]


def store_state(store: ProductStore) -> State:
    """Everything a run decides: properties (fingerprints included) and vectors of every object."""
    ids = sorted(store.iter_ids())
    return {pid: store.get(pid) or {} for pid in ids}, store.vectors(ids)


def assert_same_state(a: State, b: State) -> None:
    """Same objects, same properties, same vector names, vectors equal up to float noise of batching: in bf16 (the
    text encoder's default) a text's vector moves with the padding of the batch it shares, by up to ~2e-3 per
    component (cosine >= 0.99995, measured on 64 H&M texts); in fp32 by ~1e-7."""
    assert a[0] == b[0]
    assert {k: sorted(v) for k, v in a[1].items()} == {k: sorted(v) for k, v in b[1].items()}
    for pid, vecs in a[1].items():
        for name, vec in vecs.items():
            other = b[1][pid][name]
            assert np.allclose(vec, other, atol=5e-3), (pid, name)
            assert float(np.dot(vec, other)) / float(np.linalg.norm(vec) * np.linalg.norm(other)) > 0.9999, (pid, name)


def kill_vectorize_mid_run(settings: Settings, store: ProductStore, catalog: Path, extra_env: dict[str, str],
                           extra_args: Sequence[str] = (), wait_s: float = 180) -> int:
    """Run `recsys vectorize` (small batches) in a subprocess, SIGKILL it once part of the catalog is written;
    returns how many objects it left (asserted strictly between none and all)."""
    w = settings.weaviate
    env = dict(os.environ, RECSYS_WEAVIATE__HOST=w.host, RECSYS_WEAVIATE__HTTP_PORT=str(w.http_port),
               RECSYS_WEAVIATE__GRPC_PORT=str(w.grpc_port), RECSYS_WEAVIATE__COLLECTION=w.collection,
               RECSYS_IMAGE_ENCODER__IMAGE_SIZE=str(IMAGE_SIZE), RECSYS_VECTORIZE__CHUNK_SIZE="8",
               RECSYS_VECTORIZE__WRITE_BATCH_SIZE="8", **extra_env)
    store.ensure_collection()
    proc = subprocess.Popen([sys.executable, "-m", "jobs.cli", "vectorize", "--catalog", str(catalog),
                             "--no-progress", *extra_args], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    total = len(load_catalog(catalog).products)
    deadline = time.monotonic() + wait_s
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if 0 < store.count() < total // 2:
                break
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    partial = store.count()
    assert 0 < partial < total, f"could not catch the job mid-run (count={partial})"
    return partial
