"""Hubness correction: neighbourhoods and penalties on hand-computed vectors, calibration on a catalog built so
that one image is a hub, and the reference file's round trip and errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from recommender.alignment.hubness import calibrate, reference_sample, save_reference
from recommender.encoders.hubness import HubnessCorrection, load_correction, neighbourhood
from recommender.errors import EncoderError
from recommender.evaluation.metrics import own_item_figures


def _unit(rows: list[list[float]]) -> np.ndarray:
    a = np.asarray(rows, dtype=np.float32)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def test_neighbourhood_is_the_mean_cosine_to_the_k_nearest_reference_vectors() -> None:
    reference = np.eye(3, dtype=np.float32)
    image = _unit([[3.0, 4.0, 0.0]])  # cosines 0.6, 0.8, 0
    assert neighbourhood(image, reference, 1) == pytest.approx([0.8])
    assert neighbourhood(image, reference, 2) == pytest.approx([0.7])
    assert neighbourhood(image, reference, 10) == pytest.approx([(0.6 + 0.8) / 3])  # k capped at the reference size


def test_the_penalty_is_the_weighted_neighbourhood_and_zero_without_weight() -> None:
    reference = np.eye(3, dtype=np.float32)
    images = _unit([[3.0, 4.0, 0.0], [0.0, 0.0, 1.0]])
    assert HubnessCorrection(reference, 1, 0.5).penalty(images) == pytest.approx([0.4, 0.5])
    assert HubnessCorrection(reference, 1, 0.0).penalty(images).tolist() == [0.0, 0.0]
    assert HubnessCorrection(reference, 1, 0.5).penalty(np.zeros((0, 3), np.float32)).shape == (0,)


def test_own_item_figures_rank_by_the_score_minus_the_candidate_penalty() -> None:
    candidates = np.eye(2, dtype=np.float32)
    queries = np.array([[0.9, 0.8], [0.6, 0.7]], dtype=np.float32)  # query 1 ranks its own item first
    assert own_item_figures(queries, candidates, ks=(1,)).recall[1] == pytest.approx(1.0)
    # a penalty of 0.2 on candidate 1 turns query 1 (0.6 vs 0.5) but not query 0 (0.9 vs 0.6)
    figures = own_item_figures(queries, candidates, ks=(1,), penalty=np.array([0.0, 0.2]))
    assert figures.recall[1] == pytest.approx(0.5) and figures.mrr == pytest.approx((1 + 1 / 2) / 2)


def _hub_world() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Four products and a hub, on orthogonal axes: product axes e0..e4, a shared axis h, a private noise axis
    per image, and three reference-product axes. Every title is e_i + 0.8 h; a normal image is 0.5 e_i plus
    noise; the hub's image (product 4) is h alone. Title i's cosine (times |title|) is 0.5 with its own image
    and 0.8 with the hub image, so the hub comes first for every other query. The hub's mean cosine with the
    reference titles is 0.8/|title| = 0.625, the normal images' 0: weight 0.5 puts the hub at 0.625 − 0.3125 =
    0.3125 < 0.5/|title| = 0.39, below each query's own image (0.25 is not enough: 0.47)."""
    products, hub_axis, noise, refs = 5, 5, 6, 11
    eye = np.eye(14, dtype=np.float32)
    titles = _unit([(eye[i] + 0.8 * eye[hub_axis]).tolist() for i in range(products)])
    images = [(0.5 * eye[i] + np.sqrt(0.75) * eye[noise + i]).tolist() for i in range(products - 1)]
    images.append(eye[hub_axis].tolist())
    reference = _unit([(eye[refs + j] + 0.8 * eye[hub_axis]).tolist() for j in range(3)])
    return titles, _unit(images), reference


def test_calibration_picks_the_weight_that_puts_each_title_s_own_image_above_the_hub() -> None:
    titles, images, reference = _hub_world()
    result = calibrate(images, titles, reference, k=2)
    # weight 0: four queries find their image second (behind the hub), the hub's own query first
    assert result.mrr_by_weight["0"] == pytest.approx((4 * 0.5 + 1) / 5, abs=1e-4)
    assert result.mrr_by_weight["0.25"] == pytest.approx(0.6, abs=1e-4)
    assert result.mrr_by_weight["0.5"] == pytest.approx(1.0, abs=1e-4)
    assert result.correction.weight == 0.5  # ties with 0.75 and 1 go to the smaller weight
    assert result.correction.penalty(images) == pytest.approx([0, 0, 0, 0, 0.5 * 0.8 / np.sqrt(1.64)], abs=1e-6)


def test_calibration_switches_the_correction_off_when_it_cannot_help() -> None:
    titles = np.eye(5, dtype=np.float32)  # every title finds its own image first whatever the weight
    result = calibrate(titles.copy(), titles, np.eye(5, dtype=np.float32), k=1)
    assert result.correction.weight == 0.0 and set(result.mrr_by_weight.values()) == {1.0}


def test_the_reference_is_capped_by_a_seeded_sample() -> None:
    titles = np.arange(50, dtype=np.float32).reshape(25, 2)
    assert reference_sample(titles, seed=1, limit=30) is not None and len(reference_sample(titles, 1, 30)) == 25
    a, b = reference_sample(titles, 1, 10), reference_sample(titles, 1, 10)
    assert a.shape == (10, 2) and np.array_equal(a, b) and not np.array_equal(a, reference_sample(titles, 2, 10))


def test_a_saved_correction_loads_back_and_errors_name_the_file(tmp_path: Path) -> None:
    correction = HubnessCorrection(_unit([[1.0, 2.0], [2.0, 1.0]]), 1, 0.5)
    save_reference(tmp_path, correction)
    manifest = {"hubness": correction.manifest()}
    loaded = load_correction(tmp_path, json.loads(json.dumps(manifest)))
    assert loaded is not None and loaded.k == 1 and loaded.weight == 0.5
    assert np.array_equal(loaded.reference, correction.reference)
    assert load_correction(tmp_path, {}) is None  # a checkpoint from before the correction
    (tmp_path / "hubness.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(EncoderError, match=r"hubness\.safetensors.*corrupt"):
        load_correction(tmp_path, manifest)
    (tmp_path / "hubness.safetensors").unlink()
    with pytest.raises(EncoderError, match=r"not found: .*hubness\.safetensors"):
        load_correction(tmp_path, manifest)
