"""The real default text encoder produces unit vectors in which similar words are closer, its faster configurations
stay close to the full one, and vectors come back in input order (loads the packaged weights)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from recommender.config import TextEncoderSettings
from recommender.encoders.text import SentenceTransformerEncoder

pytestmark = pytest.mark.integration


def test_encodes_unit_vectors_and_similar_words_are_closer(text_encoder: SentenceTransformerEncoder) -> None:
    enc = text_encoder
    vecs = enc.encode_batch(["red striped shirt", "crimson shirt with stripes", "black leather boots"])
    assert vecs.shape == (3, enc.dim) == (3, 384) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2]
    assert enc.encode_batch([]).shape == (0, 384)


TEXTS = ["Red striped shirt", "20 den 1p Stockings. Ladieswear > Socks & Tights. Black. Semi shiny nylon stockings "
         "with a wide, reinforced trim at the top. Use with a suspender belt. 20 denier.",
         "Slim fit jeans. Menswear > Trousers. Dark blue. Five-pocket jeans in washed stretch denim. " * 12,
         "Boots", "Soft knitted jumper in a wool blend with dropped shoulders and ribbing at the cuffs and hem."]


@pytest.fixture(scope="module")
def full() -> np.ndarray:
    """The texts through the encoder as it was before (fp32, the model's own length)."""
    return SentenceTransformerEncoder(TextEncoderSettings(precision="fp32", batch_size=64, threads=0)).encode_batch(
        TEXTS)


@pytest.mark.parametrize(("settings", "mean_cos", "min_cos"), [
    (TextEncoderSettings(), 0.999, 0.998),  # the default, bf16
    (TextEncoderSettings(precision="int8"), 0.96, 0.94),
    (TextEncoderSettings(max_seq_length=128), 0.97, 0.90),  # only the long third text is cut
])
def test_fast_configurations_stay_close_to_the_full_encoder(full: np.ndarray, settings: TextEncoderSettings,
                                                            mean_cos: float, min_cos: float) -> None:
    vecs = SentenceTransformerEncoder(settings).encode_batch(TEXTS)
    cos = (vecs * full).sum(axis=1)
    assert vecs.dtype == np.float32 and np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert cos.mean() >= mean_cos and cos.min() >= min_cos, cos


def test_length_sorted_batches_come_back_in_input_order(text_encoder: SentenceTransformerEncoder) -> None:
    """Texts of mixed lengths in batches of 2 (sorted by length inside the encoder): each vector is the one the
    text gets alone, at its own position."""
    enc = SentenceTransformerEncoder(replace(TextEncoderSettings(), batch_size=2))
    together = enc.encode_batch(TEXTS)
    alone = np.vstack([enc.encode_batch([t]) for t in TEXTS])
    cos = together @ alone.T
    assert list(cos.argmax(axis=1)) == list(range(len(TEXTS)))
    assert np.diag(cos).min() > 0.995
