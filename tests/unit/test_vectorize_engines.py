"""The pieces both vectorize engines share, the Ray engine's CPU shares, and choosing an engine (no Ray started)."""

from __future__ import annotations

import argparse
import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from jobs.vectorize import with_engine
from recommender import components
from recommender.catalog.fingerprints import Fingerprints, Plan
from recommender.catalog.images import ImageLimits
from recommender.config import Settings, load_settings
from recommender.domain import Product
from recommender.errors import ConfigError
from recommender.vectorize.ray_engine import stage_cpus
from recommender.vectorize.stages import Planner, Prepared, VectorizeSummary, encode_texts

ENCODE = Plan(write=True, encode_text=True, encode_image=False)
KEEP = Plan(write=True, encode_text=False, encode_image=False)


class CountingEncoder:
    """A fake text encoder: the vector says which text it came from; it records every batch."""

    identity = "fake:1"
    dim = 2

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def encode_batch(self, items: Sequence[str]) -> np.ndarray:
        self.batches.append(list(items))
        return np.array([[len(t), 1.0] for t in items], dtype=np.float32)


def prepared(pid: str, plan: Plan, text: str) -> Prepared:
    return Prepared(Product(pid, pid), Fingerprints("t", "", "p"), plan, text)


@pytest.mark.parametrize(("total", "workers"), [(2, 1), (2, 2), (16, 3), (1, 1)])
def test_the_reader_and_the_writer_always_keep_cpus_beside_the_encoders(total: float, workers: int) -> None:
    cpus = stage_cpus(total, workers)
    assert cpus.reader > 0 and cpus.writer > 0 and cpus.encoder > 0
    assert cpus.reader + cpus.writer + 2 * workers * cpus.encoder == pytest.approx(total)


def test_two_cpus_one_worker_gives_each_encoder_three_quarters() -> None:
    assert stage_cpus(2, 1) == stage_cpus(2, 1, encoder_cpus=0.75)
    assert stage_cpus(2, 1).encoder == pytest.approx(0.75)
    assert stage_cpus(2, 2, encoder_cpus=0.25).encoder == 0.25


@pytest.mark.parametrize(("workers", "encoder_cpus"), [(0, 0.0), (1, 1.0), (2, 0.5)])
def test_encoders_that_would_starve_the_writer_are_refused(workers: int, encoder_cpus: float) -> None:
    with pytest.raises(ConfigError, match="ray_workers"):
        stage_cpus(2, workers, encoder_cpus)


def test_summary_parts_add_up() -> None:
    whole, part = VectorizeSummary(written=2, text_encoded=1), VectorizeSummary(written=3, skipped_unchanged=4)
    whole.add_time("write", 1.0)
    part.add_time("write", 0.5)
    part.add_time("plan", 2.0)
    part.image_problems.append(("p9", "not found"))
    whole.merge(pickle.loads(pickle.dumps(part)))  # parts cross processes in the Ray engine
    assert (whole.written, whole.text_encoded, whole.skipped_unchanged) == (5, 1, 4)
    assert whole.seconds == {"write": 1.5, "plan": 2.0}
    assert whole.image_problems == [("p9", "not found")]


def test_encode_texts_encodes_only_what_the_plan_says_in_one_batch_and_keeps_order() -> None:
    items = [prepared("a", ENCODE, "x"), prepared("b", KEEP, "yy"), prepared("c", ENCODE, "zzz")]
    encoder, summary = CountingEncoder(), VectorizeSummary()
    out = encode_texts(items, encoder, summary)
    assert encoder.batches == [["x", "zzz"]]
    assert [p.product_id for p in out] == ["a", "b", "c"]
    assert out[0].vectors["text"][0] == 1 and "text" not in out[1].vectors and out[2].vectors["text"][0] == 3
    assert summary.text_encoded == 2 and "encode_text" in summary.seconds


def test_planner_fingerprints_survive_a_pickle_round_trip(tmp_path: Path) -> None:
    planner = Planner(tmp_path, "text:1", "image:1", ImageLimits())
    product = Product("p1", "Red shirt")
    here = planner(product, None)
    there = pickle.loads(pickle.dumps(planner))(product, None)  # the Ray engine plans in other processes
    assert here == there and here.plan.write and here.plan.encode_text and not here.plan.encode_image


def test_engine_flags_override_the_settings() -> None:
    settings = load_settings(env={}, overrides={"vectorize.ray_workers": 3})
    args = argparse.Namespace(engine="ray", address="127.0.0.1:6379", ray_workers=None)
    chosen = with_engine(settings, args).vectorize
    assert (chosen.engine, chosen.ray_address, chosen.ray_workers) == ("ray", "127.0.0.1:6379", 3)
    none = argparse.Namespace(engine=None, address=None, ray_workers=None)
    assert with_engine(settings, none) is settings
    assert Settings().vectorize.engine == "local"


def test_an_unknown_engine_is_a_config_error(tmp_path: Path) -> None:
    settings = load_settings(env={}, overrides={"data_dir": tmp_path, "vectorize.engine": "spark"})
    with pytest.raises(ConfigError, match="local or ray"):
        components.vectorizer(settings, store=None, progress=False)  # type: ignore[arg-type]


def test_the_ray_setting_picks_the_ray_engine_for_vectorize_and_the_refresh(tmp_path: Path) -> None:
    from recommender.vectorize import Vectorizer
    from recommender.vectorize.ray_engine import RayVectorizer

    ray_settings = load_settings(env={}, overrides={"data_dir": tmp_path, "vectorize.engine": "ray"})
    engine = components.vectorizer(ray_settings, store=None, progress=False)  # type: ignore[arg-type]
    assert isinstance(engine, RayVectorizer)
    assert engine.text_factory().identity == components.text_encoder(ray_settings).identity
    assert engine.image_factory().identity == components.image_encoder(ray_settings).identity
    local = load_settings(env={}, overrides={"data_dir": tmp_path})
    assert isinstance(components.vectorizer(local, store=None, progress=False), Vectorizer)  # type: ignore[arg-type]
