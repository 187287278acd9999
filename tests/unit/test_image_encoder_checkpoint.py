"""Trained image-encoder checkpoints: retraining is skipped when data and config are unchanged, and a checkpoint
aligned to another text encoder than the configured one is loaded with a warning naming both."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from recommender.alignment.pipeline import train_image_encoder
from recommender.alignment.train import TrainConfig
from recommender.config import ImageEncoderSettings
from recommender.encoders.base import l2_normalize
from recommender.encoders.checkpoint import FORMAT
from recommender.encoders.image import OpenClipImageEncoder
from recommender.synthetic.shop import generate_catalog

CONFIG = TrainConfig(model="recsys-rn-micro", image_size=32, epochs=1, batch_size=8, lr=2e-3, val_fraction=0.0,
                     threads=1)


class HashedText:
    """A tiny deterministic text encoder: each text → a seeded random unit vector."""

    identity = "hashed-text:v1"
    dim = 16

    def encode_batch(self, items: Sequence[str]) -> np.ndarray:
        rows = [np.random.default_rng(int(hashlib.sha256(t.encode()).hexdigest()[:8], 16)).normal(size=self.dim)
                for t in items]
        return l2_normalize(np.array(rows).reshape(len(items), self.dim))


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("shop")
    generate_catalog(folder, n_products=12, n_shoppers=2, n_events=5, seed=5, image_size=32, progress=False)
    return folder


def versions(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.is_dir() and not p.is_symlink())


def test_unchanged_data_and_config_skip_training_and_force_or_a_new_config_retrain(shop: Path, tmp_path: Path) -> None:
    out = tmp_path / "enc"
    first = train_image_encoder(shop, out, HashedText(), CONFIG, holdout_fraction=0.25, progress=False)
    assert not first.skipped and len(versions(out)) == 1
    again = train_image_encoder(shop, out, HashedText(), CONFIG, holdout_fraction=0.25, progress=False)
    assert again.skipped and again.checkpoint == first.checkpoint.resolve() and len(versions(out)) == 1
    assert again.line().startswith("unchanged, skipping") and again.data_hash in again.line()
    other_holdout = train_image_encoder(shop, out, HashedText(), CONFIG, holdout_fraction=0.5, progress=False)
    assert not other_holdout.skipped
    other_lr = train_image_encoder(shop, out, HashedText(), replace(CONFIG, lr=5e-3), holdout_fraction=0.5,
                                   progress=False)
    assert not other_lr.skipped
    forced = train_image_encoder(shop, out, HashedText(), replace(CONFIG, lr=5e-3), holdout_fraction=0.5,
                                 force=True, progress=False)
    assert not forced.skipped and (out / "current").resolve() == forced.checkpoint.resolve()


def test_a_changed_catalog_is_retrained(shop: Path, tmp_path: Path) -> None:
    out = tmp_path / "enc"
    train_image_encoder(shop, out, HashedText(), CONFIG, progress=False)
    edited = tmp_path / "edited"
    shutil.copytree(shop / "images", edited / "images")
    text = (shop / "products.csv").read_text(encoding="utf-8")
    lines = text.splitlines()
    first_id = lines[1].split(",")[0]
    (edited / "products.csv").write_text(text.replace(f"{first_id},", f"{first_id},Renamed ", 1), encoding="utf-8")
    assert not train_image_encoder(edited, out, HashedText(), CONFIG, progress=False).skipped


def fake_checkpoint(folder: Path, text_identity: str) -> Path:
    """A version dir with just a manifest (the encoder reads it eagerly; weights load on first use)."""
    folder.mkdir(parents=True)
    manifest = {"format": FORMAT, "text_encoder": {"identity": text_identity, "dim": 384},
                "architecture": {"model": "recsys-rn-micro", "image_size": 32, "text_dim": 384,
                                 "mean": [0.5] * 3, "std": [0.5] * 3}}
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return folder


def test_a_checkpoint_aligned_to_another_text_encoder_warns_naming_both(tmp_path: Path,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    ckpt = fake_checkpoint(tmp_path / "v1", "sentence-transformers:all-MiniLM-L6-v2")
    with caplog.at_level(logging.WARNING, logger="recommender.encoders.image"):
        encoder = OpenClipImageEncoder(ImageEncoderSettings(checkpoint=ckpt),
                                       text_encoder="sentence-transformers:all-mpnet-base-v2")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "all-MiniLM-L6-v2" in warnings[0] and "all-mpnet-base-v2" in warnings[0] and str(ckpt) in warnings[0]
    assert not encoder.check_text_encoder("sentence-transformers:all-mpnet-base-v2")


def test_a_checkpoint_aligned_to_the_configured_text_encoder_loads_quietly(tmp_path: Path,
                                                                           caplog: pytest.LogCaptureFixture) -> None:
    ckpt = fake_checkpoint(tmp_path / "v1", "sentence-transformers:all-MiniLM-L6-v2")
    with caplog.at_level(logging.WARNING, logger="recommender.encoders.image"):
        encoder = OpenClipImageEncoder(ImageEncoderSettings(checkpoint=ckpt),
                                       text_encoder="sentence-transformers:all-MiniLM-L6-v2")
        untrained = OpenClipImageEncoder(ImageEncoderSettings())  # no checkpoint: nothing to compare
    assert not caplog.records
    assert encoder.check_text_encoder("sentence-transformers:all-MiniLM-L6-v2")
    assert untrained.check_text_encoder("anything")


def test_a_checkpoint_fits_every_precision_and_length_of_its_text_model(tmp_path: Path,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    old = fake_checkpoint(tmp_path / "v1", "sentence-transformers:all-MiniLM-L6-v2")  # trained before bf16
    new = fake_checkpoint(tmp_path / "v2", "sentence-transformers:all-MiniLM-L6-v2|bf16")
    with caplog.at_level(logging.WARNING, logger="recommender.encoders.image"):
        encoder = OpenClipImageEncoder(ImageEncoderSettings(checkpoint=old),
                                       text_encoder="sentence-transformers:all-MiniLM-L6-v2|bf16")
        assert encoder.check_text_encoder("sentence-transformers:all-MiniLM-L6-v2|int8|max_seq=128")
        assert OpenClipImageEncoder(ImageEncoderSettings(checkpoint=new)).check_text_encoder(
            "sentence-transformers:all-MiniLM-L6-v2")
    assert not caplog.records
    assert not encoder.check_text_encoder("sentence-transformers:all-mpnet-base-v2|bf16")


def test_a_timm_trunk_tower_trains_saves_and_reloads_to_the_same_vectors(shop: Path, tmp_path: Path) -> None:
    import torch

    from recommender.encoders.checkpoint import load_checkpoint

    config = replace(CONFIG, model="recsys-regnetx-002", batch_size=4)
    summary = train_image_encoder(shop, tmp_path / "enc", HashedText(), config, progress=False)
    assert summary.result is not None
    images = torch.rand(3, 3, 32, 32)
    model, spec, manifest = load_checkpoint(summary.checkpoint)
    assert manifest["architecture"]["model"] == "recsys-regnetx-002" and spec.text_dim == HashedText.dim
    with torch.inference_mode():
        assert torch.allclose(model(images), summary.result.model.eval()(images), atol=1e-5)


def test_pairs_carry_each_products_category_and_colour(shop: Path) -> None:
    from recommender.alignment.data import load_pairs
    from recommender.catalog.reader import CatalogReader

    pairs = load_pairs(shop, HashedText(), 32, progress=False)
    products = {p.product_id: p for p in CatalogReader(shop)}
    assert len(pairs.attributes) == len(pairs) > 0
    for pid, (category, colour) in zip(pairs.product_ids, pairs.attributes, strict=True):
        assert category == products[pid].category_path and colour == products[pid].color
    assert any(category for category, _ in pairs.attributes)


def test_a_run_with_validation_saves_its_hubness_correction_and_the_encoder_loads_it(shop: Path,
                                                                                      tmp_path: Path) -> None:
    from recommender.encoders.checkpoint import load_checkpoint, load_hubness

    config = replace(CONFIG, val_fraction=0.25)
    summary = train_image_encoder(shop, tmp_path / "enc", HashedText(), config, progress=False)
    assert summary.result is not None and summary.result.hubness is not None
    chosen = summary.result.hubness.correction
    _, _, manifest = load_checkpoint(summary.checkpoint)
    assert manifest["hubness"]["weight"] == chosen.weight and manifest["hubness"]["k"] == config.hubness_k
    assert set(manifest["hubness_validation_mrr"]) == {"0", "0.25", "0.5", "0.75", "1"}
    # the reference is the training split's titles (12 products, none held out, 3 for validation)
    assert manifest["hubness"]["reference_titles"] == summary.result.train_size == 9
    loaded = load_hubness(summary.checkpoint)
    assert loaded is not None and np.array_equal(loaded.reference, chosen.reference)
    settings = ImageEncoderSettings(checkpoint=summary.checkpoint)
    from_encoder = OpenClipImageEncoder(settings).hubness
    assert from_encoder is not None and from_encoder.weight == chosen.weight
    assert np.array_equal(from_encoder.reference, chosen.reference)
    assert OpenClipImageEncoder(settings, load_weights=False).hubness is None  # the untrained baseline
    no_validation = train_image_encoder(shop, tmp_path / "plain", HashedText(), CONFIG, progress=False)
    assert "hubness" not in load_checkpoint(no_validation.checkpoint)[2]
    assert OpenClipImageEncoder(ImageEncoderSettings(checkpoint=no_validation.checkpoint)).hubness is None
