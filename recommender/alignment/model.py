"""Training side of the aligned image model: a new tower + projection to train, and the contrastive loss."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from recommender.encoders.tower import AlignedImageModel, TowerSpec, register_model_configs
from recommender.errors import EncoderError


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
