"""Reading versioned image-encoder checkpoints: ``<out>/<version>/{model.safetensors, manifest.json}``, with
``<out>/current`` pointing at the version in use (written by ``recommender.alignment.checkpoint``).

Weights are a flat safetensors file (tensors only, never pickled objects). The manifest names the
architecture (open_clip model + its config), the input size and normalisation, the text encoder the
vectors align to, the data and the validation figures.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from recommender.encoders.base import file_digest
from recommender.encoders.hubness import HubnessCorrection, load_correction
from recommender.encoders.tower import AlignedImageModel, TowerSpec, register_model_configs
from recommender.errors import EncoderError

FORMAT = "recsys-image-encoder/1"
WEIGHTS = "model.safetensors"
MANIFEST = "manifest.json"
CURRENT = "current"


def checkpoint_dir(path: Path) -> Path:
    """The version dir of a checkpoint given as the dir, its manifest, or a ``current`` symlink."""
    return path.parent if path.name == MANIFEST else path


def is_checkpoint(path: Path) -> bool:
    """True when ``path`` looks like an aligned checkpoint (a dir or a manifest.json), not a bare weights file."""
    return path.is_dir() or path.name == MANIFEST


def read_manifest(path: Path) -> dict[str, Any]:
    """The checkpoint's manifest, checked for the fields loading needs; EncoderError naming the path if not."""
    file = checkpoint_dir(path) / MANIFEST
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise EncoderError(f"image encoder checkpoint not found: {file}") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EncoderError(f"image encoder checkpoint manifest {file} is corrupt: {exc}") from exc
    arch = manifest.get("architecture") if isinstance(manifest, dict) else None
    needed = ("model", "image_size", "text_dim", "mean", "std")
    if manifest.get("format") != FORMAT or not isinstance(arch, dict) or any(k not in arch for k in needed):
        raise EncoderError(f"image encoder checkpoint manifest {file} is not a {FORMAT} manifest")
    return manifest


def spec_from_manifest(manifest: dict[str, Any]) -> TowerSpec:
    """The tower spec a manifest describes."""
    a = manifest["architecture"]
    return TowerSpec(str(a["model"]), int(a["image_size"]), int(a["text_dim"]),
                     tuple(float(v) for v in a["mean"]), tuple(float(v) for v in a["std"]),  # type: ignore[arg-type]
                     bool(a.get("flip_average", False)))


def load_checkpoint(path: Path, load_weights: bool = True, seed: int = 0) -> tuple[AlignedImageModel, TowerSpec,
                                                                                      dict[str, Any]]:
    """Rebuild the model a checkpoint describes and load its weights (``load_weights=False``: the same
    architecture, seeded random init — the untrained baseline). Errors name the path."""
    manifest = read_manifest(path)
    spec = spec_from_manifest(manifest)
    model = _rebuild(manifest, spec, seed)
    if load_weights:
        try:
            model.load_state_dict(_read_weights(checkpoint_dir(path), manifest))
        except RuntimeError as exc:
            raise EncoderError(f"image encoder checkpoint {checkpoint_dir(path)} does not fit its architecture: "
                               f"{exc}") from exc
    return model.eval(), spec, manifest


def _rebuild(manifest: dict[str, Any], spec: TowerSpec, seed: int) -> AlignedImageModel:
    import open_clip

    register_model_configs()
    cfg = manifest["architecture"].get("model_config")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            if open_clip.get_model_config(spec.model) is not None or not isinstance(cfg, dict):
                clip = open_clip.create_model(spec.model, force_image_size=spec.image_size)
            else:  # a config open_clip does not ship: rebuild it from the manifest
                cfg = {**cfg, "vision_cfg": {**cfg["vision_cfg"], "image_size": spec.image_size}}
                clip = open_clip.CLIP(**cfg)
        except (RuntimeError, ValueError, OSError, KeyError, TypeError) as exc:
            raise EncoderError(f"cannot rebuild open_clip model {spec.model!r} of the checkpoint: {exc}") from exc
        visual = clip.visual
        with torch.no_grad():
            tower_dim = int(visual.eval()(torch.zeros(1, 3, spec.image_size, spec.image_size)).shape[-1])
        return AlignedImageModel(visual, tower_dim, spec.text_dim, flip_average=spec.flip_average)


def _read_weights(folder: Path, manifest: dict[str, Any]) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    file = folder / str(manifest.get("weights", {}).get("file", WEIGHTS))
    if not file.is_file():
        raise EncoderError(f"image encoder checkpoint weights not found: {file}")
    expected = manifest.get("weights", {}).get("sha256")
    if expected and file_digest(file) != expected:
        raise EncoderError(f"image encoder checkpoint weights {file} do not match the manifest's sha256 (corrupt)")
    try:
        return load_file(str(file))
    except (SafetensorError, OSError, ValueError) as exc:
        raise EncoderError(f"image encoder checkpoint weights {file} are corrupt: {exc}") from exc


def load_hubness(path: Path) -> HubnessCorrection | None:
    """The text→image hubness correction saved with a checkpoint (None for checkpoints without one)."""
    return load_correction(checkpoint_dir(path), read_manifest(path))


def weights_digest(path: Path) -> str:
    """The content hash of a checkpoint's weights file (the manifest's, verified on load)."""
    manifest = read_manifest(path)
    file = checkpoint_dir(path) / str(manifest.get("weights", {}).get("file", WEIGHTS))
    if not file.is_file():
        raise EncoderError(f"image encoder checkpoint weights not found: {file}")
    return file_digest(file)
