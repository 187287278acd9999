"""Training the image encoder against the frozen text encoder: real open_clip towers (tiny configs), the real
MiniLM text encoder, real checkpoints on disk. Data is a small seeded synthetic shop made in the test."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from jobs.cli import main
from recommender import components
from recommender.alignment.checkpoint import save_checkpoint
from recommender.alignment.data import PairSet, load_pairs, split_rows
from recommender.alignment.model import build_model, contrastive_loss
from recommender.alignment.train import TrainConfig, encode_pairs, train
from recommender.catalog.reader import load_catalog
from recommender.config import ImageEncoderSettings, Settings, load_settings
from recommender.encoders.checkpoint import load_checkpoint
from recommender.encoders.image import OpenClipImageEncoder
from recommender.encoders.text import SentenceTransformerEncoder
from recommender.errors import EncoderError
from recommender.evaluation.metrics import own_item_figures
from recommender.synthetic.shop import generate_catalog

pytestmark = pytest.mark.integration

TINY = "recsys-rn-micro"  # an open_clip ModifiedResNet config of ~0.3M params (recommender/encoders/model_configs)
SIZE = 32
CONFIG = TrainConfig(model=TINY, image_size=SIZE, epochs=40, batch_size=16, lr=3e-3, val_fraction=0.0,
                     patience=100, threads=1, seed=3)


@pytest.fixture(scope="module")
def text_encoder() -> SentenceTransformerEncoder:
    return SentenceTransformerEncoder(Settings().text_encoder)


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("shop")
    generate_catalog(folder, n_products=72, n_shoppers=10, n_events=50, seed=11, image_size=48, progress=False)
    return folder


@pytest.fixture(scope="module")
def pairs(catalog: Path, text_encoder: SentenceTransformerEncoder) -> PairSet:
    return load_pairs(catalog, text_encoder, SIZE, progress=False)


@pytest.fixture(scope="module")
def trained(pairs: PairSet) -> tuple[PairSet, PairSet, object]:
    keep, held = split_rows(len(pairs), 0.3, seed=0)
    return pairs.subset(keep), pairs.subset(held), train(pairs.subset(keep), CONFIG, progress=False)


def test_pairs_hold_one_decoded_image_and_unit_text_vectors_per_product(pairs: PairSet, catalog: Path) -> None:
    assert len(pairs) == len(load_catalog(catalog).products) == 72
    assert pairs.images.dtype == torch.uint8 and tuple(pairs.images.shape[1:]) == (3, SIZE, SIZE)
    assert torch.allclose(pairs.texts.norm(dim=1), torch.ones(len(pairs)), atol=1e-5)
    assert not torch.allclose(pairs.texts, pairs.titles)  # full text (category, colour, …) ≠ title alone


def test_training_lowers_the_loss_and_beats_the_untrained_tower_on_held_out_pairs(trained) -> None:  # type: ignore[no-untyped-def]
    _, held, result = trained
    losses = [h.loss for h in result.history]
    assert losses[-1] < 0.8 * losses[0]
    untrained, spec = build_model(TINY, SIZE, 384, seed=CONFIG.seed)
    before = own_item_figures(held.titles.numpy(), encode_pairs(untrained, spec, held).numpy())
    after = own_item_figures(held.titles.numpy(), encode_pairs(result.model, result.spec, held).numpy())
    assert after.mrr > before.mrr
    with torch.no_grad():
        rows = torch.arange(len(held))
        loss_before = contrastive_loss(encode_pairs(untrained, spec, held), held.titles, rows, untrained.logit_scale)
        loss_after = contrastive_loss(encode_pairs(result.model, spec, held), held.titles, rows,
                                      result.model.logit_scale)
    assert float(loss_after) < float(loss_before)


def test_training_is_deterministic_for_a_seed(pairs: PairSet) -> None:
    config = replace(CONFIG, epochs=1)
    first, second = train(pairs, config, progress=False), train(pairs, config, progress=False)
    assert first.history[0].loss == second.history[0].loss
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_a_saved_checkpoint_reproduces_the_same_vectors(trained, catalog: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    *_, result = trained
    version = save_checkpoint(tmp_path / "enc", result.model, result.spec, {"text_encoder": {"identity": "t"}})
    images = [Image.open(catalog / p.image).convert("RGB") for p in load_catalog(catalog).products[:5] if p.image]
    expected = encode_pairs(result.model, result.spec, _as_pairs(images)).numpy()
    for path in (version, version / "manifest.json", tmp_path / "enc" / "current"):
        encoder = OpenClipImageEncoder(ImageEncoderSettings(checkpoint=path))
        assert encoder.dim == 384 and not encoder.is_untrained
        np.testing.assert_allclose(encoder.encode_batch(images), expected, atol=1e-5)
        assert json.loads((version / "manifest.json").read_text())["weights"]["sha256"] in encoder.identity
    untrained = OpenClipImageEncoder(ImageEncoderSettings(checkpoint=version), load_weights=False)
    assert untrained.is_untrained and "random-init" in untrained.identity
    assert not np.allclose(untrained.encode_batch(images), expected, atol=1e-3)


def _as_pairs(images: list[Image.Image]) -> PairSet:
    from recommender.encoders.image import square_thumbnail

    arrays = np.stack([np.asarray(square_thumbnail(img, SIZE)) for img in images])
    n = len(images)
    return PairSet(tuple(map(str, range(n))), ("",) * n, torch.from_numpy(arrays).permute(0, 3, 1, 2).contiguous(),
                   torch.zeros(n, 384), torch.zeros(n, 384), "h")


def test_retraining_publishes_a_new_version_and_current_follows(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, _, result = trained
    first = save_checkpoint(tmp_path, result.model, result.spec, {})
    with torch.no_grad():
        result.model.proj.weight.add_(0.01)
    try:
        second = save_checkpoint(tmp_path, result.model, result.spec, {})
    finally:
        with torch.no_grad():
            result.model.proj.weight.sub_(0.01)
    assert first != second and first.is_dir()
    assert (tmp_path / "current").resolve() == second.resolve()
    assert not list(tmp_path.glob(".*"))  # no staging dirs or temporary links left behind


def test_missing_or_corrupt_checkpoints_fail_with_the_path(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    missing = tmp_path / "nope"
    with pytest.raises(EncoderError, match=str(missing)):
        OpenClipImageEncoder(ImageEncoderSettings(checkpoint=missing))
    _, _, result = trained
    version = save_checkpoint(tmp_path / "enc", result.model, result.spec, {})
    weights = version / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    encoder = OpenClipImageEncoder(ImageEncoderSettings(checkpoint=version))
    with pytest.raises(EncoderError, match=str(weights)):
        encoder.encode_batch([Image.new("RGB", (8, 8))])
    (version / "manifest.json").write_text("{not json")
    with pytest.raises(EncoderError, match=str(version / "manifest.json")):
        OpenClipImageEncoder(ImageEncoderSettings(checkpoint=version))
    with pytest.raises(EncoderError, match="does not fit"):
        load_checkpoint(_with_other_architecture(tmp_path, result))


def _with_other_architecture(tmp_path: Path, result) -> Path:  # type: ignore[no-untyped-def]
    version = save_checkpoint(tmp_path / "other", result.model, result.spec, {})
    manifest = json.loads((version / "manifest.json").read_text())
    manifest["architecture"]["model"] = "recsys-rn-tiny"
    (version / "manifest.json").write_text(json.dumps(manifest))
    return version


def test_fine_tuning_starts_from_a_local_pretrained_open_clip_file(pairs: PairSet, tmp_path: Path) -> None:
    import open_clip

    torch.manual_seed(123)
    clip = open_clip.create_model(TINY, force_image_size=SIZE)
    weights = tmp_path / "my-clip.pt"
    torch.save(clip.state_dict(), weights)
    model, _ = build_model(TINY, SIZE, 384, pretrained=str(weights), seed=0)
    for name, tensor in clip.visual.state_dict().items():
        assert torch.equal(model.visual.state_dict()[name], tensor), name
    scratch, _ = build_model(TINY, SIZE, 384, seed=0)
    assert not torch.equal(scratch.visual.conv1.weight, clip.visual.conv1.weight)
    result = train(pairs, replace(CONFIG, epochs=1, pretrained=str(weights)), progress=False)
    assert len(result.history) == 1
    with pytest.raises(EncoderError, match="pretrained"):
        build_model(TINY, SIZE, 384, pretrained=str(tmp_path / "absent.pt"))


def test_cli_trains_then_the_service_uses_current_and_evaluate_search_reads_held_out(catalog: Path,
                                                                                    tmp_path: Path) -> None:
    data = tmp_path / "data"
    code = main(["--data-dir", str(data), "train-image-encoder", "--catalog", str(catalog), "--model", TINY,
                 "--image-size", str(SIZE), "--epochs", "2", "--batch-size", "16", "--holdout-fraction", "0.25",
                 "--val-fraction", "0.1", "--no-progress"])
    assert code == 0
    current = data / "models" / "image-encoder" / "current"
    manifest = json.loads((current / "manifest.json").read_text())
    held = set(manifest["data"]["holdout_product_ids"])
    assert len(held) == 18 and manifest["data"]["train"] + manifest["data"]["val"] == 54
    assert manifest["architecture"]["model"] == TINY and manifest["architecture"]["image_size"] == SIZE
    encoder = components.image_encoder(load_settings(env={}, overrides={"data_dir": data}))
    assert encoder.checkpoint == current.resolve() and not encoder.is_untrained  # pinned: a run sees one version
    out = tmp_path / "eval"
    assert main(["--data-dir", str(data), "evaluate-search", "--catalog", str(catalog), "--out", str(out),
                 "--exclude-trained", "--no-progress"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["products"] == 18
    assert set(metrics["text_to_image"]) == {"recall@1", "recall@10", "mrr"} == set(metrics["chance"])
    assert metrics["chance"]["recall@10"] == pytest.approx(10 / 18, abs=1e-6)
    report = (out / "report.html").read_text()
    assert report.count("data:image/jpeg;base64,") >= 12 * 5 and 'class="hit"' in report
    baseline = tmp_path / "baseline"  # the same architecture untrained, on the same held-out products
    assert main(["--data-dir", str(data), "evaluate-search", "--catalog", str(catalog), "--out", str(baseline),
                 "--untrained", "--exclude-trained", "--no-progress"]) == 0
    untrained = json.loads((baseline / "metrics.json").read_text())
    assert untrained["image_encoder_untrained"] and untrained["products"] == 18
