"""The aligned image model: an open_clip vision tower + a linear projection into the text space, and its loss."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from recommender.errors import EncoderError

MODEL_CONFIG_DIR = Path(__file__).with_name("model_configs")
_registered = False


def register_model_configs() -> None:
    """Make the project's small tower configs (``recsys-*``) known to open_clip by name (idempotent)."""
    global _registered
    if not _registered:
        import open_clip

        open_clip.add_model_config(MODEL_CONFIG_DIR)
        _registered = True


def model_config(name: str) -> dict[str, Any] | None:
    """The open_clip config dict of a model name (None when open_clip does not know it)."""
    import open_clip

    register_model_configs()
    cfg = open_clip.get_model_config(name)
    return json.loads(json.dumps(cfg)) if cfg is not None else None


@dataclass(frozen=True)
class TowerSpec:
    """Everything needed to rebuild the tower's architecture and its input normalisation."""

    model: str
    image_size: int
    text_dim: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    flip_average: bool = False  # inference: average the vectors of the image and its mirror image


class AlignedImageModel(nn.Module):
    """open_clip vision tower → linear projection → unit vector in the text encoder's space.

    ``logit_scale`` is the learnable inverse temperature of the InfoNCE loss (stored as its log). With
    ``flip_average`` the eval-mode vector is that of the image plus that of its mirror image (training
    flips at random anyway; the average is steadier: measured +0.01 Recall@10 on Myntra's held-out titles).
    """

    def __init__(self, visual: nn.Module, tower_dim: int, text_dim: int, temperature: float = 0.07,
                 flip_average: bool = False) -> None:
        super().__init__()
        self.visual = visual
        self.proj = nn.Linear(tower_dim, text_dim, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature)))
        self.flip_average = flip_average

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Unit-norm text-space vectors of normalised image tensors (B×3×S×S)."""
        out = self.proj(self.visual(images))
        if self.flip_average and not self.training:
            out = out + self.proj(self.visual(images.flip(3)))
        return F.normalize(out, dim=-1)


def build_model(model: str, image_size: int, text_dim: int, pretrained: str | None = None,
                seed: int = 0, flip_average: bool = False) -> tuple[AlignedImageModel, TowerSpec]:
    """A new aligned model: the named open_clip tower (random init from ``seed``, or ``pretrained`` weights:
    an open_clip tag or a local checkpoint file) with a seeded random projection."""
    import open_clip

    register_model_configs()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            clip = open_clip.create_model(model, pretrained=pretrained or None, force_image_size=image_size,
                                          require_pretrained=bool(pretrained))
        except (RuntimeError, ValueError, OSError, KeyError) as exc:
            raise EncoderError(f"cannot build open_clip model {model!r} (pretrained={pretrained!r}): {exc}") from exc
        visual = clip.visual
        with torch.no_grad():
            tower_dim = int(visual.eval()(torch.zeros(1, 3, image_size, image_size)).shape[-1])
        aligned = AlignedImageModel(visual, tower_dim, text_dim, flip_average=flip_average)
    mean = tuple(float(v) for v in getattr(visual, "image_mean", None) or open_clip.OPENAI_DATASET_MEAN)
    std = tuple(float(v) for v in getattr(visual, "image_std", None) or open_clip.OPENAI_DATASET_STD)
    return aligned, TowerSpec(model, image_size, text_dim, mean, std, flip_average)  # type: ignore[arg-type]


def contrastive_loss(image_vecs: torch.Tensor, text_bank: torch.Tensor, targets: torch.Tensor,
                     logit_scale: torch.Tensor, target_temperature: float = 0.0) -> torch.Tensor:
    """Symmetric InfoNCE between a batch of image vectors and their frozen text vectors.

    image→text ranks each image against the whole ``text_bank`` (every training text: negatives are free
    because the text side is frozen); text→image ranks each text against the images of the batch.
    ``targets`` are the rows of ``text_bank`` that belong to the batch's images. With
    ``target_temperature`` > 0 the targets are soft (see ``soft_targets``): near-duplicate texts share them.
    """
    scale = logit_scale.clamp(max=math.log(100.0)).exp()
    i2t = scale * image_vecs @ text_bank.T
    t2i = scale * text_bank[targets] @ image_vecs.T
    if target_temperature > 0:
        soft = soft_targets(text_bank[targets], text_bank, target_temperature)
        return 0.5 * (F.cross_entropy(i2t, soft) + F.cross_entropy(t2i, soft[:, targets]
                                                                    / soft[:, targets].sum(1, keepdim=True)))
    batch = torch.arange(len(image_vecs), device=image_vecs.device)
    return 0.5 * (F.cross_entropy(i2t, targets) + F.cross_entropy(t2i, batch))


def soft_targets(queries: torch.Tensor, bank: torch.Tensor, temperature: float) -> torch.Tensor:
    """Row-wise target distributions over ``bank``: softmax of text–text cosine / ``temperature``.

    A text's own row has cosine 1 and the most mass; identical titles get equal mass and near-duplicates
    a share, so the loss does not push an image away from a title that describes it just as well.
    """
    with torch.no_grad():
        return torch.softmax((queries @ bank.T - 1.0) / temperature, dim=1)
