"""Writing versioned image-encoder checkpoints: a new version dir, then an atomic switch of ``<out>/current``.

The layout and the manifest format are read back by ``recommender.encoders.checkpoint``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from recommender.alignment.hubness import save_reference
from recommender.encoders.base import file_digest
from recommender.encoders.checkpoint import CURRENT, FORMAT, MANIFEST, WEIGHTS
from recommender.encoders.hubness import HubnessCorrection
from recommender.encoders.tower import AlignedImageModel, TowerSpec, model_config


def save_checkpoint(out: Path, model: AlignedImageModel, spec: TowerSpec, info: dict[str, Any],
                    hubness: HubnessCorrection | None = None) -> Path:
    """Write a new version dir under ``out`` (weights, the hubness reference when given, manifest), then point
    ``out/current`` at it."""
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    staging = out / f".staging-{os.getpid()}-{time.time_ns()}"
    staging.mkdir()
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(staging / WEIGHTS))
    digest = file_digest(staging / WEIGHTS)
    manifest = {"format": FORMAT, "architecture": _architecture(spec), "weights": {"file": WEIGHTS, "sha256": digest},
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **info}
    if hubness is not None:
        save_reference(staging, hubness)
        manifest["hubness"] = hubness.manifest()
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    version = out / f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{digest[:8]}"
    if version.exists():  # the same weights saved twice in one second: keep the first copy
        _remove_dir(staging)
    else:
        staging.rename(version)
    point_current(out, version)
    return version


def point_current(out: Path, version: Path) -> None:
    """Atomically make ``out/current`` a (relative) symlink to ``version`` (write aside, then rename)."""
    tmp = out / f".{CURRENT}-{os.getpid()}-{time.time_ns()}"
    tmp.symlink_to(version.name, target_is_directory=True)
    os.replace(tmp, out / CURRENT)


def _remove_dir(path: Path) -> None:
    for child in path.iterdir():
        child.unlink()
    path.rmdir()


def _architecture(spec: TowerSpec) -> dict[str, Any]:
    return {"model": spec.model, "model_config": model_config(spec.model), "image_size": spec.image_size,
            "text_dim": spec.text_dim, "mean": list(spec.mean), "std": list(spec.std),
            "preprocess": "pad-to-square-white,resize-bicubic", "flip_average": spec.flip_average}
