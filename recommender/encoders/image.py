"""Image encoder: an open_clip vision tower (pretrained, fine-tuned checkpoint, or seeded random init)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from recommender.config import ImageEncoderSettings
from recommender.encoders.base import file_digest, l2_normalize, text_space
from recommender.errors import EncoderError

if TYPE_CHECKING:
    from recommender.encoders.hubness import HubnessCorrection

log = logging.getLogger(__name__)


def square_thumbnail(image: Image.Image, size: int) -> Image.Image:
    """The image scaled to fit ``size`` px and centred on a white ``size``² square (nothing cropped: shape matters).

    Scaled before padding, so memory is bounded by the input and ``size``² (a 1×N strip never becomes N²).
    The same function prepares images for training and for encoding, so both see identical pixels.
    """
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    long_side = max(rgb.width, rgb.height)
    fit = (max(1, round(rgb.width * size / long_side)), max(1, round(rgb.height * size / long_side)))
    if fit != rgb.size:
        rgb = rgb.resize(fit, Image.Resampling.BICUBIC, reducing_gap=3.0)
    if fit == (size, size):
        return rgb
    canvas = Image.new("RGB", (size, size), (255, 255, 255))
    canvas.paste(rgb, ((size - fit[0]) // 2, (size - fit[1]) // 2))
    return canvas


class OpenClipImageEncoder:
    """Encoder[PIL.Image] over an open_clip vision tower; weights load on first use (thread-safe).

    Without ``pretrained`` or ``checkpoint`` the tower is randomly initialised from ``seed``:
    reproducible, but its vectors mean nothing beyond raw pixel statistics.
    """

    def __init__(self, settings: ImageEncoderSettings, load_weights: bool = True,
                 text_encoder: str | None = None) -> None:
        """``load_weights=False`` with a trained checkpoint gives its architecture at seeded random init
        (the untrained baseline an evaluation compares against). ``text_encoder``: the configured text
        encoder's identity; a trained checkpoint aligned to another one is loaded with a warning."""
        self._settings = settings
        self._load_weights = load_weights
        self._lock = threading.Lock()
        self._tower: Any = None
        self._transform: Any = None
        self._dim = 0
        self._manifest: dict[str, Any] | None = None
        ckpt = settings.checkpoint
        if ckpt is not None and not ckpt.exists():
            raise EncoderError(f"image encoder checkpoint not found: {ckpt}")
        if ckpt is not None and _is_aligned_checkpoint(ckpt):
            from recommender.encoders.checkpoint import read_manifest

            self._manifest = read_manifest(ckpt)
            if text_encoder is not None:
                self.check_text_encoder(text_encoder)

    @property
    def identity(self) -> str:
        """Model, weights source and preprocessing: everything that changes the vectors."""
        s = self._settings
        if self._manifest is not None and s.checkpoint is not None:
            from recommender.encoders.checkpoint import weights_digest

            arch = self._manifest["architecture"]
            weights = f"ckpt={weights_digest(s.checkpoint)}" if self._load_weights else f"random-init-seed={s.seed}"
            return f"open_clip-aligned:{arch['model']}:{weights}:size={arch['image_size']}"
        weights = (f"ckpt={file_digest(s.checkpoint)}" if s.checkpoint else
                   f"pretrained={s.pretrained}" if s.pretrained else f"random-init-seed={s.seed}")
        return f"open_clip:{s.model}:{weights}:size={s.image_size or 'native'}"

    @property
    def checkpoint(self) -> Path | None:
        """The configured checkpoint path (a trained checkpoint dir, its manifest, or a tower file)."""
        return self._settings.checkpoint

    @property
    def is_untrained(self) -> bool:
        """True when the tower is a random placeholder (say so wherever its results are shown)."""
        if self._manifest is not None:
            return not self._load_weights
        return self._settings.checkpoint is None and self._settings.pretrained is None

    @property
    def aligned_to(self) -> str | None:
        """Identity of the text encoder a trained checkpoint maps images onto (None: not aligned to text)."""
        if self._manifest is None:
            return None
        return str(self._manifest.get("text_encoder", {}).get("identity", "")) or None

    @property
    def hubness(self) -> HubnessCorrection | None:
        """The text→image hubness correction of a trained checkpoint (None: untrained, other weights, or a
        checkpoint trained before the correction existed)."""
        if self._manifest is None or self._settings.checkpoint is None or not self._load_weights:
            return None
        from recommender.encoders.checkpoint import load_hubness

        return load_hubness(self._settings.checkpoint)

    def check_text_encoder(self, configured: str) -> bool:
        """False, and a warning naming both, when a trained checkpoint maps images into the space of another
        text encoder than ``configured`` (its text→image search would compare unrelated vectors). Only the model
        counts (``text_space``): a bf16 or length-limited copy of the same model stays in its space."""
        aligned = self.aligned_to
        if aligned is None or text_space(aligned) == text_space(configured):
            return True
        log.warning("image encoder checkpoint %s was aligned to text encoder %r, but the configured text encoder "
                    "is %r: image vectors will not match text vectors; retrain with `recsys train-image-encoder`",
                    self._settings.checkpoint, aligned, configured)
        return False

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
        if self._manifest is not None and s.checkpoint is not None:
            return self._load_aligned(s.checkpoint)
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

    def _load_aligned(self, path: Path) -> tuple[Any, Any, int]:
        from recommender.encoders.checkpoint import load_checkpoint
        from recommender.encoders.tower import normalize

        model, spec, _ = load_checkpoint(path, self._load_weights, self._settings.seed)

        def transform(image: Image.Image) -> Any:
            import torch

            pixels = np.asarray(square_thumbnail(image, spec.image_size))
            uint8 = torch.from_numpy(pixels.copy()).permute(2, 0, 1).unsqueeze(0)
            return normalize(uint8, spec.mean, spec.std)[0]

        return model.to(self._settings.device), transform, spec.text_dim

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


def _is_aligned_checkpoint(path: Path) -> bool:
    """A trained checkpoint (a version dir or its manifest.json), as opposed to a bare tower state dict file."""
    return path.is_dir() or path.name == "manifest.json"


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
