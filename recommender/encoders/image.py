"""Image encoder: an open_clip vision tower (pretrained, fine-tuned checkpoint, or seeded random init)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from recommender.config import ImageEncoderSettings
from recommender.encoders.base import l2_normalize
from recommender.errors import EncoderError


def file_digest(path: Path) -> str:
    """Short sha256 of a file, naming a checkpoint's exact weights in the encoder identity."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


class OpenClipImageEncoder:
    """Encoder[PIL.Image] over an open_clip vision tower; weights load on first use (thread-safe).

    Without ``pretrained`` or ``checkpoint`` the tower is randomly initialised from ``seed``:
    reproducible, but its vectors mean nothing beyond raw pixel statistics.
    """

    def __init__(self, settings: ImageEncoderSettings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._tower: Any = None
        self._transform: Any = None
        self._dim = 0
        if settings.checkpoint is not None and not settings.checkpoint.is_file():
            raise EncoderError(f"image encoder checkpoint not found: {settings.checkpoint}")

    @property
    def identity(self) -> str:
        """Model, weights source and preprocessing: everything that changes the vectors."""
        s = self._settings
        weights = (f"ckpt={file_digest(s.checkpoint)}" if s.checkpoint else
                   f"pretrained={s.pretrained}" if s.pretrained else f"random-init-seed={s.seed}")
        return f"open_clip:{s.model}:{weights}:size={s.image_size or 'native'}"

    @property
    def is_untrained(self) -> bool:
        """True when the tower is a random placeholder (say so wherever its results are shown)."""
        return self._settings.checkpoint is None and self._settings.pretrained is None

    def _ensure_loaded(self) -> None:
        with self._lock:
            if self._tower is None:
                self._tower, self._transform, self._dim = self._load()

    def _load(self) -> tuple[Any, Any, int]:
        import open_clip
        import torch

        s = self._settings
        if s.threads > 0:
            torch.set_num_threads(s.threads)
        kwargs: dict[str, Any] = {"force_image_size": s.image_size} if s.image_size else {}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(s.seed)
            try:
                model, _, transform = open_clip.create_model_and_transforms(
                    s.model, pretrained=s.pretrained or None, device=s.device, **kwargs)
            except (RuntimeError, ValueError, OSError) as exc:
                raise EncoderError(f"cannot build open_clip model {s.model!r} "
                                   f"(pretrained={s.pretrained!r}): {exc}") from exc
        tower = model.visual.eval()
        if s.checkpoint is not None:
            _load_tower_checkpoint(tower, s.checkpoint)
        with torch.no_grad():
            size = transform.transforms[0].size
            side = size if isinstance(size, int) else size[0]
            dim = int(tower(torch.zeros(1, 3, side, side)).shape[-1])
        return tower, transform, dim

    @property
    def dim(self) -> int:
        """Vector size of the tower's output."""
        self._ensure_loaded()
        return self._dim

    def preprocess(self, image: Image.Image) -> Any:
        """The model-ready tensor of one RGB image (safe to call from loader threads)."""
        self._ensure_loaded()
        return self._transform(image)

    def encode_prepared(self, tensors: Sequence[Any]) -> np.ndarray:
        """Unit-norm vectors of already preprocessed image tensors."""
        import torch

        self._ensure_loaded()
        if not tensors:
            return np.zeros((0, self._dim), dtype=np.float32)
        with torch.inference_mode():
            out = self._tower(torch.stack(list(tensors)).to(self._settings.device))
        return l2_normalize(out.float().cpu().numpy())

    def encode_batch(self, items: Sequence[Image.Image]) -> np.ndarray:
        """Unit-norm float32 vectors of RGB images, in order."""
        return self.encode_prepared([self.preprocess(img) for img in items])


def _load_tower_checkpoint(tower: Any, path: Path) -> None:
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise EncoderError(f"image encoder checkpoint not found: {path}") from exc
    except Exception as exc:
        raise EncoderError(f"image encoder checkpoint {path} is corrupt or not a torch state dict: {exc}") from exc
    state = state.get("visual", state) if isinstance(state, dict) else state
    try:
        tower.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise EncoderError(f"image encoder checkpoint {path} does not fit model: {exc}") from exc
