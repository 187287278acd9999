"""The aligned image model served and trained: an open_clip vision tower + a linear projection into the text
space, the project's tower configs, and the input normalisation."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

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


def normalize(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 N×3×S×S → float, scaled to [0, 1] and normalised per channel (as the tower expects)."""
    m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return (images.float() / 255.0 - m) / s
