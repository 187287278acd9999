"""The text encoder resolves the packaged default offline and produces unit vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recommender.config import TextEncoderSettings
from recommender.encoders.text import SentenceTransformerEncoder, resolve_text_model
from recommender.errors import EncoderError


def test_default_model_resolves_to_packaged_weights() -> None:
    path = Path(resolve_text_model("all-MiniLM-L6-v2"))
    assert (path / "config.json").is_file()
    assert resolve_text_model("sentence-transformers/all-MiniLM-L6-v2") == str(path)
    assert resolve_text_model("/some/other/model") == "/some/other/model"


def test_encodes_unit_vectors_and_similar_words_are_closer() -> None:
    enc = SentenceTransformerEncoder(TextEncoderSettings())
    vecs = enc.encode_batch(["red striped shirt", "crimson shirt with stripes", "black leather boots"])
    assert vecs.shape == (3, enc.dim) == (3, 384) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2]
    assert enc.encode_batch([]).shape == (0, 384)


def test_unknown_model_path_is_a_clear_error(tmp_path: Path) -> None:
    enc = SentenceTransformerEncoder(TextEncoderSettings(model=str(tmp_path / "no-such-model")))
    with pytest.raises(EncoderError, match="no-such-model"):
        enc.encode_batch(["x"])
