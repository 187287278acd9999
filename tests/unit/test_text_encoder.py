"""The text encoder resolves the packaged default offline; its identity follows every option that changes its vectors,
so vectorize re-encodes the texts (only) when one changes (its vectors: tests/integration/test_text_encoder.py)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from recommender.catalog.fingerprints import Fingerprints, image_fingerprint, plan_product, text_fingerprint
from recommender.config import TextEncoderSettings
from recommender.encoders.base import text_space
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


def _plan_after_switch(before: TextEncoderSettings, after: TextEncoderSettings) -> tuple[bool, bool]:
    """(text re-encoded, image re-encoded) for a product stored under ``before`` and vectorized under ``after``."""
    text, image = "Red striped shirt. Tops", b"image bytes"

    def fingerprints(settings: TextEncoderSettings) -> Fingerprints:
        identity = SentenceTransformerEncoder(settings).identity
        return Fingerprints(text_fingerprint(identity, text), image_fingerprint("img:1", image), "props")

    plan = plan_product(fingerprints(after), fingerprints(before))
    return plan.encode_text, plan.encode_image


def test_identity_names_every_option_that_changes_the_vectors() -> None:
    old = TextEncoderSettings(precision="fp32", batch_size=64, threads=0)
    assert SentenceTransformerEncoder(old).identity == "sentence-transformers:all-MiniLM-L6-v2"  # as before
    identities = {SentenceTransformerEncoder(s).identity for s in (
        old, TextEncoderSettings(), TextEncoderSettings(precision="int8"), TextEncoderSettings(max_seq_length=128),
        TextEncoderSettings(precision="fp32", max_seq_length=128))}
    assert len(identities) == 5
    assert SentenceTransformerEncoder(TextEncoderSettings()).identity == "sentence-transformers:all-MiniLM-L6-v2|bf16"
    # batch size and threads do not change the vectors, so they do not change the identity
    assert SentenceTransformerEncoder(replace(old, batch_size=8, threads=2)).identity == \
        SentenceTransformerEncoder(old).identity


def test_a_new_precision_or_length_re_encodes_texts_and_only_texts() -> None:
    old = TextEncoderSettings(precision="fp32", batch_size=64, threads=0)
    assert _plan_after_switch(old, TextEncoderSettings()) == (True, False)
    assert _plan_after_switch(TextEncoderSettings(), TextEncoderSettings(max_seq_length=128)) == (True, False)
    assert _plan_after_switch(old, replace(old, batch_size=16, threads=1)) == (False, False)


def test_all_options_of_one_model_share_its_space() -> None:
    identities = [SentenceTransformerEncoder(s).identity for s in (
        TextEncoderSettings(precision="fp32"), TextEncoderSettings(), TextEncoderSettings(max_seq_length=64))]
    assert {text_space(i) for i in identities} == {"sentence-transformers:all-MiniLM-L6-v2"}
    assert text_space("sentence-transformers:all-mpnet-base-v2|bf16") != text_space(identities[0])


@pytest.mark.parametrize(("field", "value"), [("precision", "fp16"), ("max_seq_length", -1), ("threads", -2)])
def test_bad_settings_are_errors_naming_the_setting(field: str, value: object) -> None:
    with pytest.raises(EncoderError, match=f"text_encoder.{field}"):
        SentenceTransformerEncoder(replace(TextEncoderSettings(), **{field: value}))
