"""The real default text encoder produces unit vectors in which similar words are closer (loads its weights)."""

from __future__ import annotations

import numpy as np
import pytest

from recommender.encoders.text import SentenceTransformerEncoder

pytestmark = pytest.mark.integration


def test_encodes_unit_vectors_and_similar_words_are_closer(text_encoder: SentenceTransformerEncoder) -> None:
    enc = text_encoder
    vecs = enc.encode_batch(["red striped shirt", "crimson shirt with stripes", "black leather boots"])
    assert vecs.shape == (3, enc.dim) == (3, 384) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2]
    assert enc.encode_batch([]).shape == (0, 384)
