"""Search evaluation: ranking figures on hand-computed cases and a catalog whose answer is known by construction."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from recommender.encoders.hubness import HubnessCorrection
from recommender.evaluation.metrics import chance, own_item_figures
from recommender.evaluation.search_eval import evaluate_catalog

N = 6


def test_own_item_figures_match_hand_computed_ranks() -> None:
    candidates = np.eye(3, dtype=np.float32)
    # query 0 ranks its own item first; query 1 second (behind 0); query 2 third (behind 0, 1).
    queries = np.array([[1.0, 0.0, 0.0], [0.9, 0.5, 0.0], [0.9, 0.5, 0.1]], dtype=np.float32)
    figures = own_item_figures(queries, candidates, ks=(1, 2))
    assert figures.recall == {1: pytest.approx(1 / 3), 2: pytest.approx(2 / 3)}
    assert figures.mrr == pytest.approx((1 + 1 / 2 + 1 / 3) / 3)


def test_chance_is_k_over_n_and_the_mean_reciprocal_rank_of_a_random_order() -> None:
    assert chance(4) == {"recall@1": 0.25, "recall@10": 1.0, "mrr": pytest.approx((1 + 1 / 2 + 1 / 3 + 1 / 4) / 4,
                                                                                   abs=1e-6)}
    with pytest.raises(ValueError):
        chance(0)


class OneHotTitles:
    """Encoder[str]: product k's title "item k" → the k-th unit vector."""

    identity, dim = "one-hot-titles", N

    def encode_batch(self, items: Sequence[str]) -> np.ndarray:
        return np.eye(N, dtype=np.float32)[[int(t.split()[-1]) for t in items]]


class OneHotColours:
    """Encoder[Image]: an image whose red channel is 40·k → the k-th unit vector (= its product's title vector)."""

    identity, dim = "one-hot-colours", N

    def encode_batch(self, items: Sequence[Image.Image]) -> np.ndarray:
        return np.eye(N, dtype=np.float32)[[round(img.getpixel((0, 0))[0] / 40) for img in items]]  # type: ignore[index]


def _catalog(folder: Path) -> Path:
    (folder / "images").mkdir(parents=True)
    with (folder / "products.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["product_id", "title", "image"])
        for k in range(N):
            Image.new("RGB", (16, 16), (40 * k, 0, 0)).save(folder / "images" / f"{k}.png")
            w.writerow([f"p{k}", f"item {k}", f"images/{k}.png"])
        w.writerow(["p-broken", "item 0", "images/missing.png"])
    return folder


def test_an_image_encoder_that_reproduces_the_text_vector_scores_perfectly(tmp_path: Path) -> None:
    result = evaluate_catalog(_catalog(tmp_path), OneHotTitles(), OneHotColours(), progress=False)
    m = result.metrics
    assert m["products"] == N and m["without_image"] == 1
    assert m["text_to_image"] == m["image_to_text"] == {"recall@1": 1.0, "recall@10": 1.0, "mrr": 1.0}
    assert m["chance"] == chance(N)
    assert result.report_html.count('class="hit"') == N  # each example's own image is found and outlined


def test_only_restricts_the_evaluation_to_the_given_products(tmp_path: Path) -> None:
    result = evaluate_catalog(_catalog(tmp_path), OneHotTitles(), OneHotColours(), only={"p1", "p4"},
                              progress=False)
    assert result.metrics["products"] == 2 and result.metrics["chance"]["recall@1"] == 0.5  # type: ignore[index]


def test_a_hubness_correction_ranks_text_to_image_as_search_does_and_keeps_the_uncorrected_figures(
        tmp_path: Path) -> None:
    # image 0 is the only one near the reference title: its penalty 2 puts it below every other image (0)
    correction = HubnessCorrection(np.eye(N, dtype=np.float32)[:1], k=1, weight=2.0)
    result = evaluate_catalog(_catalog(tmp_path), OneHotTitles(), OneHotColours(), hubness=correction,
                              progress=False)
    m = result.metrics
    assert m["text_to_image"]["mrr"] == pytest.approx((N - 1 + 1 / N) / N)  # type: ignore[index]
    assert m["text_to_image_uncorrected"] == m["image_to_text"] == {"recall@1": 1.0, "recall@10": 1.0, "mrr": 1.0}
    assert m["hubness"] == {"file": "hubness.safetensors", "k": 1, "weight": 2.0, "reference_titles": 1}
    # the examples are ranked with the correction too: query 0's image is 6th, outside the 5 shown
    assert result.report_html.count('class="hit"') == N - 1
