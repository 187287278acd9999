"""Writing versioned image-encoder checkpoints: a new version dir, then an atomic switch of the ``<out>/current``
symlink (``recommender.artifacts``).

The layout and the manifest format are read back by ``recommender.encoders.checkpoint``.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from recommender.alignment.hubness import save_reference
from recommender.artifacts import VersionedDir
from recommender.encoders.base import file_digest
from recommender.encoders.checkpoint import FORMAT, MANIFEST, WEIGHTS
from recommender.encoders.hubness import HubnessCorrection
from recommender.encoders.tower import AlignedImageModel, TowerSpec, model_config

_VERSION_RE = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$")


def save_checkpoint(out: Path, model: AlignedImageModel, spec: TowerSpec, info: dict[str, Any],
                    hubness: HubnessCorrection | None = None) -> Path:
    """Write a new version dir under ``out`` (weights, the hubness reference when given, manifest), then point
    ``out/current`` at it."""
    from safetensors.torch import save_file

    versions = VersionedDir(out, _VERSION_RE, symlink=True)
    with versions.staging() as staging:
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(staging / WEIGHTS))
        digest = file_digest(staging / WEIGHTS)
        manifest = {"format": FORMAT, "architecture": _architecture(spec),
                    "weights": {"file": WEIGHTS, "sha256": digest},
                    "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **info}
        if hubness is not None:
            save_reference(staging, hubness)
            manifest["hubness"] = hubness.manifest()
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        # the same weights saved twice in one second: the first copy is kept
        version = versions.commit(staging, f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{digest[:8]}")
    versions.point(version.name)
    return version


def _architecture(spec: TowerSpec) -> dict[str, Any]:
    return {"model": spec.model, "model_config": model_config(spec.model), "image_size": spec.image_size,
            "text_dim": spec.text_dim, "mean": list(spec.mean), "std": list(spec.std),
            "preprocess": "pad-to-square-white,resize-bicubic", "flip_average": spec.flip_average}
