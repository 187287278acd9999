"""The text encoder resolves the packaged default offline (its vectors: tests/integration/test_text_encoder.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from recommender.config import TextEncoderSettings
from recommender.encoders.text import SentenceTransformerEncoder, resolve_text_model
from recommender.errors import EncoderError


def test_default_model_resolves_to_packaged_weights() -> None:
    path = Path(resolve_text_model("all-MiniLM-L6-v2"))
    assert (path / "config.json").is_file()
    assert resolve_text_model("sentence-transformers/all-MiniLM-L6-v2") == str(path)
    assert resolve_text_model("/some/other/model") == "/some/other/model"


def test_unknown_model_path_is_a_clear_error(tmp_path: Path) -> None:
    enc = SentenceTransformerEncoder(TextEncoderSettings(model=str(tmp_path / "no-such-model")))
    with pytest.raises(EncoderError, match="no-such-model"):
        enc.encode_batch(["x"])
