"""Settings of the text encoder (kept apart from config.py, which re-exports them, to keep that module small)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TextEncoderSettings:
    """sentence-transformers model (name or path) that turns product text into the ``text`` vector.

    The defaults were chosen by ``bench/text_encoding.py`` (README "Text encoding speed"): bf16 weights, batches
    of 16, one torch thread. ``precision="fp32", batch_size=64, threads=0`` is the encoder as it was before; fp32
    at the model's own length keeps its identity, so its stored vectors are reused.
    """

    model: str = "all-MiniLM-L6-v2"
    batch_size: int = 16
    device: str = "cpu"
    precision: str = "bf16"  # fp32 | bf16 | int8 (dynamic, per-channel quantization of the Linear layers)
    max_seq_length: int = 0  # tokens kept per text; 0 = the model's own limit (256 for the default)
    threads: int = 1  # torch intra-op threads, set process-wide when the model loads; 0 = torch's default
