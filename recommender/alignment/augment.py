"""Batch augmentations that keep colour meaningful: random resized crop, flip, small rotation/shear and a
mild brightness change, applied per image in one ``grid_sample`` (no hue or saturation jitter)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def augment(images: torch.Tensor, generator: torch.Generator, *, min_scale: float = 0.6, max_rotate_deg: float = 8.0,
            brightness: float = 0.08) -> torch.Tensor:
    """Randomly transformed float copies (values in [0, 1]) of uint8 images; same generator → same output."""
    n = len(images)
    x = images.float() / 255.0

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, generator=generator)

    area = uniform(min_scale, 1.0)
    aspect = torch.exp(uniform(math.log(3 / 4), math.log(4 / 3)))
    sx = torch.sqrt(area * aspect).clamp(max=1.0)
    sy = torch.sqrt(area / aspect).clamp(max=1.0)
    tx = (1 - sx) * uniform(-1.0, 1.0)
    ty = (1 - sy) * uniform(-1.0, 1.0)
    angle = uniform(-max_rotate_deg, max_rotate_deg) * math.pi / 180
    flip = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack([torch.stack([sx * cos * flip, -sy * sin, tx], dim=1),
                         torch.stack([sx * sin * flip, sy * cos, ty], dim=1)], dim=1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # Product shots sit on a plain background: extend the border instead of padding with black.
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    gain = uniform(1 - brightness, 1 + brightness).view(n, 1, 1, 1)
    return (out * gain).clamp(0.0, 1.0)
